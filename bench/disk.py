#!/usr/bin/python3
"""bench/disk.py — what the disk under DIR allows a durable accept path (a few seconds).

usage: bench/disk.py DIR [--secs S]

Prints one line of key=value figures, each a rate of durable operations per second, single thread:
  file      write a 4 KiB file to tmp/, fsync it, rename it into new/
  file_dir  the same plus an fsync of new/ (what Gannet's accept path does per message, before its
            SQLite commit)
  log1      append 4 KiB to one file and fdatasync after every record
  log32     append 4 KiB records, one fdatasync per group of 32 (what group commit can approach)
The files are removed afterwards.
"""
import argparse
import os
import shutil
import time

REC = b"m" * 4095 + b"\n"


def files(d, secs, dirsync):
    tmp, new = os.path.join(d, "tmp"), os.path.join(d, "new")
    dfd = os.open(new, os.O_RDONLY | os.O_DIRECTORY)
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < secs:
        p = os.path.join(tmp, "f%d" % n)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, REC)
        os.fsync(fd)
        os.close(fd)
        os.rename(p, os.path.join(new, "f%d" % n))
        if dirsync:
            os.fsync(dfd)
        n += 1
    el = time.monotonic() - t0
    os.close(dfd)
    return n / el


def log(d, secs, group):
    fd = os.open(os.path.join(d, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < secs:
        for _ in range(group):
            os.write(fd, REC)
        os.fdatasync(fd)
        n += group
    el = time.monotonic() - t0
    os.close(fd)
    return n / el


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--secs", type=float, default=1.5)
    a = ap.parse_args()
    d = os.path.join(a.dir, "disk-probe.%d" % os.getpid())
    out = {}
    try:
        for sub in ("tmp", "new"):
            os.makedirs(os.path.join(d, sub))
        out["file"] = files(d, a.secs, False)
        out["file_dir"] = files(d, a.secs, True)
        out["log1"] = log(d, a.secs, 1)
        out["log32"] = log(d, a.secs, 32)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(" ".join("%s=%.0f" % kv for kv in out.items()), flush=True)


if __name__ == "__main__":
    main()
