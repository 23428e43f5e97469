//! Test support for `data prepare imagenet` (§3.4's data as the official archives ship it): a
//! small MATLAB level-5 writer for the devkit's meta.mat, raw tar builders that can write hostile
//! members, and a miniature of the three archives with the real ones' structure.
#![allow(dead_code)]
use std::io::Write;
use std::path::{Path, PathBuf};

/// A data element: tag, bytes, padding to 8 (the small 4-byte form when `data` fits in it).
fn elem(ty: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    if data.len() <= 4 && ty != 14 {
        v.extend((((data.len() as u32) << 16) | ty).to_le_bytes());
        v.extend(data);
        v.resize(8, 0);
        return v;
    }
    v.extend(ty.to_le_bytes());
    v.extend((data.len() as u32).to_le_bytes());
    v.extend(data);
    v.resize(8 + data.len().div_ceil(8) * 8, 0);
    v
}

fn matrix(class: u8, dims: &[i32], name: &str, body: &[u8]) -> Vec<u8> {
    let mut b = elem(6, &[class, 0, 0, 0, 0, 0, 0, 0]);
    b.extend(elem(
        5,
        &dims
            .iter()
            .flat_map(|d| d.to_le_bytes())
            .collect::<Vec<_>>(),
    ));
    b.extend(elem(1, name.as_bytes()));
    b.extend(body);
    elem(14, &b)
}

/// A double row vector (`[]` when empty, written as MATLAB does: an empty matrix element).
pub fn double(vals: &[f64]) -> Vec<u8> {
    if vals.is_empty() {
        return elem(14, &[]);
    }
    let d: Vec<u8> = vals.iter().flat_map(|x| x.to_le_bytes()).collect();
    matrix(6, &[1, vals.len() as i32], "", &elem(9, &d))
}

/// A char row vector (UTF-16 code units, as MATLAB writes char arrays).
pub fn chars(s: &str) -> Vec<u8> {
    let d: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    matrix(4, &[1, s.encode_utf16().count() as i32], "", &elem(4, &d))
}

/// A named N×1 struct array; `elements[k][f]` is field `f` of element `k` (from [`double`],
/// [`chars`]).
pub fn struct_array(name: &str, fields: &[&str], elements: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut body = elem(5, &32i32.to_le_bytes());
    let mut names = Vec::new();
    for f in fields {
        let mut slot = f.as_bytes().to_vec();
        slot.resize(32, 0);
        names.extend(slot);
    }
    body.extend(elem(1, &names));
    for e in elements {
        for f in e {
            body.extend(f);
        }
    }
    matrix(2, &[elements.len() as i32, 1], name, &body)
}

/// A MAT-file of the given top-level elements, each zlib-compressed (`-v7`) when `compress`.
pub fn mat_file(elements: &[Vec<u8>], compress: bool) -> Vec<u8> {
    let mut f = b"MATLAB 5.0 MAT-file, written by the resnet test support".to_vec();
    f.resize(116, b' ');
    f.extend([0u8; 8]);
    f.extend(0x0100u16.to_le_bytes());
    f.extend(b"IM");
    for e in elements {
        if compress {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(e).unwrap();
            let z = z.finish().unwrap();
            f.extend(15u32.to_le_bytes());
            f.extend((z.len() as u32).to_le_bytes());
            f.extend(z);
        } else {
            f.extend(e);
        }
    }
    f
}

/// One synset of the miniature meta.mat.
pub struct Syn {
    pub id: u32,
    pub wnid: String,
    pub children: Vec<u32>,
    pub train_images: u32,
}

/// meta.mat's `synsets` with the real file's fields, in its order.
pub fn meta_mat(syns: &[Syn], compress: bool) -> Vec<u8> {
    let fields = [
        "ILSVRC2012_ID",
        "WNID",
        "words",
        "gloss",
        "num_children",
        "children",
        "wordnet_height",
        "num_train_images",
    ];
    let els: Vec<Vec<Vec<u8>>> = syns
        .iter()
        .map(|s| {
            let ch: Vec<f64> = s.children.iter().map(|&c| c as f64).collect();
            vec![
                double(&[s.id as f64]),
                chars(&s.wnid),
                chars(&format!("words of {}, a class", s.wnid)),
                chars("a gloss"),
                double(&[ch.len() as f64]),
                double(&ch),
                double(&[if ch.is_empty() { 0.0 } else { 1.0 }]),
                double(&[s.train_images as f64]),
            ]
        })
        .collect();
    mat_file(&[struct_array("synsets", &fields, &els)], compress)
}

/// A raw member: name, data, type (regular file, or a symlink to `data` as its target).
pub enum Raw<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
}

/// A plain tar whose names are written into the header bytes directly, so that hostile names
/// (which `tar::Builder` refuses) can be tested.
pub fn tar(members: &[Raw]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = tar::Header::new_old();
        let (name, data, kind): (&str, &[u8], _) = match m {
            Raw::File(n, d) => (n, d, tar::EntryType::Regular),
            Raw::Symlink(n, t) => {
                h.set_link_name(t).unwrap();
                (n, &[], tar::EntryType::Symlink)
            }
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(bytes).unwrap();
    z.finish().unwrap()
}

/// The miniature: classes `n0000000k` (ids k+1) under two non-leaf synsets, `train[k]` images
/// per class, validation images whose ground truth cycles through the classes.
pub struct Mini {
    pub wnids: Vec<String>,
    pub train: Vec<u32>,
    pub val: usize,
}

impl Mini {
    pub fn new(train: &[u32], val: usize) -> Mini {
        let wnids = (0..train.len()).map(|k| format!("n{:08}", k + 1)).collect();
        Mini {
            wnids,
            train: train.to_vec(),
            val,
        }
    }

    pub fn synsets(&self) -> Vec<Syn> {
        let n = self.wnids.len() as u32;
        let mut s: Vec<Syn> = (0..n)
            .map(|k| Syn {
                id: k + 1,
                wnid: self.wnids[k as usize].clone(),
                children: vec![],
                train_images: self.train[k as usize],
            })
            .collect();
        // Inner nodes, as the real file has 860 of them after the 1000 leaves.
        s.push(Syn {
            id: n + 1,
            wnid: "n09999998".into(),
            children: (1..=n).collect(),
            train_images: 0,
        });
        s.push(Syn {
            id: n + 2,
            wnid: "n09999999".into(),
            children: vec![n + 1],
            train_images: 0,
        });
        s
    }

    /// Validation image `i`'s class (the ground truth's line `i`, 0-based).
    pub fn val_class(&self, i: usize) -> usize {
        (i * 7 + 3) % self.wnids.len()
    }

    pub fn image(wnid: &str, name: &str) -> Vec<u8> {
        format!("jpeg bytes of {wnid}/{name}").into_bytes()
    }

    /// The class tar of class `k` (`<wnid>_<n>.JPEG` members).
    pub fn class_tar(&self, k: usize) -> Vec<u8> {
        let w = &self.wnids[k];
        let files: Vec<(String, Vec<u8>)> = (0..self.train[k])
            .map(|i| {
                let n = format!("{w}_{}.JPEG", 100 + i);
                let d = Self::image(w, &n);
                (n, d)
            })
            .collect();
        let raws: Vec<Raw> = files.iter().map(|(n, d)| Raw::File(n, d)).collect();
        tar(&raws)
    }

    pub fn val_name(i: usize) -> String {
        format!("ILSVRC2012_val_{:08}.JPEG", i + 1)
    }

    /// Writes the three archives under `dir` (validation members in reverse order: the mapping
    /// is by sorted name, not by position in the tar); `class_tars` replaces the class tars.
    pub fn write(&self, dir: &Path, class_tars: Option<Vec<(String, Vec<u8>)>>) -> [PathBuf; 3] {
        let tars = class_tars.unwrap_or_else(|| {
            (0..self.wnids.len())
                .map(|k| (format!("{}.tar", self.wnids[k]), self.class_tar(k)))
                .collect()
        });
        let raws: Vec<Raw> = tars.iter().map(|(n, d)| Raw::File(n, d)).collect();
        let train = dir.join("ILSVRC2012_img_train.tar");
        std::fs::write(&train, tar(&raws)).unwrap();
        let vals: Vec<(String, Vec<u8>)> = (0..self.val)
            .rev()
            .map(|i| {
                let n = Self::val_name(i);
                let d = Self::image(&self.wnids[self.val_class(i)], &n);
                (n, d)
            })
            .collect();
        let raws: Vec<Raw> = vals.iter().map(|(n, d)| Raw::File(n, d)).collect();
        let val = dir.join("ILSVRC2012_img_val.tar");
        std::fs::write(&val, tar(&raws)).unwrap();
        let gt: String = (0..self.val)
            .map(|i| format!("{}\n", self.val_class(i) + 1))
            .collect();
        let meta = meta_mat(&self.synsets(), true);
        let devkit = dir.join("ILSVRC2012_devkit_t12.tar.gz");
        let dk = tar(&[
            Raw::File("ILSVRC2012_devkit_t12/data/meta.mat", &meta),
            Raw::File(
                "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt",
                gt.as_bytes(),
            ),
            Raw::File("ILSVRC2012_devkit_t12/COPYING", b"devkit"),
        ]);
        std::fs::write(&devkit, gz(&dk)).unwrap();
        [train, val, devkit]
    }
}
