"""The reference for examples/dist_allreduce.rs: the same all-reduces with Python's
torch.distributed (gloo, 2 local ranks). Run: .venv/bin/python scripts/dist_allreduce_reference.py [REPS]"""
import os, socket, statistics, sys, time
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

SIZES = [("resnet20", 269_722), ("resnet18", 11_689_512)]


def worker(rank, port, reps):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    for name, n in SIZES:
        t = torch.ones(n)
        dist.all_reduce(t)
        ms = []
        for _ in range(reps):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            t.div_(2)
            ms.append((time.perf_counter() - t0) * 1e3)
        if rank == 0:
            print(f"{name} ({n} floats): median {statistics.median(ms):.2f} ms, min {min(ms):.2f} ms over {reps}")
    dist.destroy_process_group()


if __name__ == "__main__":
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    mp.spawn(worker, args=(port, reps), nprocs=2)
