//! §4.2's CIFAR-10 download, tested against a tiny HTTP server on 127.0.0.1 started inside the test
//! (there is no internet here): success, wrong MD5, a truncated transfer (kept as `.part`, never
//! accepted, resumed with a range request), and no network.
use resnet::data::{cifar, fetch};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy)]
enum Mode {
    /// The whole body (or the requested range, with 206).
    Full,
    /// Announces the whole length but sends only this many bytes, then closes.
    CutAt(usize),
}

/// Serves `body` on a loopback port for `connections` requests; returns the address and the
/// log of request heads.
fn serve(body: Vec<u8>, mode: Mode, connections: usize) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut s = stream.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let from = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("range: bytes=")
                        .map(|r| r.trim_end_matches('-').parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            log2.lock().unwrap().push(head);
            let (status, part) = if from > 0 {
                ("206 Partial Content", &body[from..])
            } else {
                ("200 OK", &body[..])
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                part.len()
            );
            let send = match mode {
                Mode::Full => part,
                Mode::CutAt(n) => &part[..n.min(part.len())],
            };
            let _ = s.write_all(send);
            let _ = s.flush();
        }
    });
    (addr, log)
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 253) as u8).collect()
}

fn remote_for(addr: SocketAddr, body: &[u8], dir: &Path) -> fetch::Remote {
    let p = dir.join("reference");
    std::fs::write(&p, body).unwrap();
    fetch::Remote {
        url: format!("http://{addr}/cifar-10-binary.tar.gz"),
        size: body.len() as u64,
        md5: fetch::md5_file(&p).unwrap(),
    }
}

#[test]
fn download_succeeds_and_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let body = payload(300_000);
    let (addr, _) = serve(body.clone(), Mode::Full, 1);
    let remote = remote_for(addr, &body, dir.path());
    let dest = dir.path().join("sub/file.tar.gz");
    fetch::download(&remote, &dest, false).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert!(!dir.path().join("sub/file.tar.gz.part").exists());
    // Verified file present: no network needed a second time (the server is gone).
    fetch::download(&remote, &dest, false).unwrap();
}

#[test]
fn wrong_md5_is_refused_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let body = payload(10_000);
    let (addr, _) = serve(body.clone(), Mode::Full, 1);
    let mut remote = remote_for(addr, &body, dir.path());
    remote.md5 = "0123456789abcdef0123456789abcdef".into();
    let dest = dir.path().join("f.tar.gz");
    let e = format!("{:#}", fetch::download(&remote, &dest, false).unwrap_err());
    assert!(
        e.contains("expected 0123456789abcdef0123456789abcdef") && e.contains("corrupt"),
        "{e}"
    );
    assert!(!dest.exists());
    assert!(!dir.path().join("f.tar.gz.part").exists());
}

#[test]
fn truncated_download_is_never_accepted_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let body = payload(200_000);
    let (addr, _) = serve(body.clone(), Mode::CutAt(70_000), 1);
    let remote = remote_for(addr, &body, dir.path());
    let dest = dir.path().join("f.tar.gz");
    let e = format!("{:#}", fetch::download(&remote, &dest, false).unwrap_err());
    assert!(
        e.contains("stopped at 70000 of 200000 bytes") && e.contains("resumes"),
        "{e}"
    );
    assert!(
        !dest.exists(),
        "a partial download must not take the final name"
    );
    let part = dir.path().join("f.tar.gz.part");
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 70_000);
    // The next try asks only for the rest.
    let (addr2, log) = serve(body.clone(), Mode::Full, 1);
    let mut remote2 = remote.clone();
    remote2.url = format!("http://{addr2}/cifar-10-binary.tar.gz");
    fetch::download(&remote2, &dest, false).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    let head = log.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.contains("range: bytes=70000-"), "{head}");
}

#[test]
fn no_network_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was just free and is now closed: connection refused.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let remote = fetch::Remote {
        url: format!("http://{addr}/cifar-10-binary.tar.gz"),
        size: 10,
        md5: "c32a1d4ab5d03f1284b67883e8d87530".into(),
    };
    let dest = dir.path().join("cifar-10-binary.tar.gz");
    let e = format!("{:#}", fetch::download(&remote, &dest, false).unwrap_err());
    assert!(
        e.contains("cannot reach") && e.contains("without a network") && e.contains("copy it to"),
        "{e}"
    );
    assert!(!dest.exists());
}

#[test]
fn cifar_ensure_downloads_and_extracts_only_the_six_members() {
    let dir = tempfile::tempdir().unwrap();
    // A small archive of the official layout: 2 records per batch file, plus an extra member.
    let rec = |i: usize| {
        let mut v = vec![(i % 10) as u8];
        v.extend((0..3072).map(|j| ((i + j) % 256) as u8));
        v
    };
    let batch: Vec<u8> = rec(0).into_iter().chain(rec(1)).collect();
    let mut b = tar::Builder::new(Vec::new());
    for f in cifar::TRAIN_FILES
        .iter()
        .chain([&cifar::TEST_FILE, &"batches.meta.txt"])
    {
        let mut h = tar::Header::new_gnu();
        h.set_size(batch.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, format!("cifar-10-batches-bin/{f}"), &batch[..])
            .unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&b.into_inner().unwrap()).unwrap();
    let archive = gz.finish().unwrap();
    let (addr, _) = serve(archive.clone(), Mode::Full, 1);
    let remote = remote_for(addr, &archive, dir.path());
    let root = dir.path().join("cifar");
    let batches = cifar::ensure(&root, &remote, false).unwrap();
    assert!(!batches.join("batches.meta.txt").exists());
    let set = cifar::read_dir(&batches, 2).unwrap();
    assert_eq!(set.train_labels.size(), vec![10]);
    assert_eq!(set.test_labels.size(), vec![2]);
    // Present now: no second download (the server served its one connection).
    cifar::ensure(&root, &remote, false).unwrap();
}
