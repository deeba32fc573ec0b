#!/usr/bin/env python3
"""treecmp.py A B [--no-atime] [--no-dir-mtime]: compare two directory trees exactly.

Compares, for every entry (by raw byte names): type, permission bits incl.
setuid/setgid/sticky, uid/gid, mtime in nanoseconds, size, content (files),
allocated blocks being sparse where the source is sparse, symlink targets,
device numbers, xattrs (user.*), and hard-link groups.  Prints every
difference and exits 1 if there is any.
"""
import os, stat, sys

def walk(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root.encode()):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root.encode())] = full
    return out

def xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in names if n.startswith("user.")}

def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    no_dir_mtime = "--no-dir-mtime" in sys.argv
    a, b = args
    ea, eb = walk(a), walk(b)
    diffs = []
    for rel in sorted(set(ea) | set(eb)):
        name = rel.decode(errors="backslashreplace")
        if rel not in ea or rel not in eb:
            diffs.append(f"{name}: only in {'A' if rel in ea else 'B'}")
            continue
        pa, pb = ea[rel], eb[rel]
        sa, sb = os.lstat(pa), os.lstat(pb)
        if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
            diffs.append(f"{name}: type {oct(sa.st_mode)} vs {oct(sb.st_mode)}"); continue
        if not stat.S_ISLNK(sa.st_mode) and stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
            diffs.append(f"{name}: mode {oct(stat.S_IMODE(sa.st_mode))} vs {oct(stat.S_IMODE(sb.st_mode))}")
        if (sa.st_uid, sa.st_gid) != (sb.st_uid, sb.st_gid):
            diffs.append(f"{name}: owner {sa.st_uid}:{sa.st_gid} vs {sb.st_uid}:{sb.st_gid}")
        if not (stat.S_ISDIR(sa.st_mode) and no_dir_mtime) and sa.st_mtime_ns != sb.st_mtime_ns:
            diffs.append(f"{name}: mtime {sa.st_mtime_ns} vs {sb.st_mtime_ns}")
        if stat.S_ISREG(sa.st_mode):
            if sa.st_size != sb.st_size:
                diffs.append(f"{name}: size {sa.st_size} vs {sb.st_size}")
            else:
                with open(pa, "rb") as fa, open(pb, "rb") as fb:
                    while True:
                        x, y = fa.read(1 << 20), fb.read(1 << 20)
                        if x != y:
                            diffs.append(f"{name}: content differs"); break
                        if not x:
                            break
                # a sparse source must stay sparse (allow some slack for block rounding)
                if sa.st_blocks * 512 < sa.st_size // 2 and sb.st_blocks * 512 > sa.st_blocks * 512 + (1 << 20):
                    diffs.append(f"{name}: not sparse ({sb.st_blocks} blocks vs {sa.st_blocks})")
            if (sa.st_nlink > 1) != (sb.st_nlink > 1):
                diffs.append(f"{name}: links {sa.st_nlink} vs {sb.st_nlink}")
        if stat.S_ISLNK(sa.st_mode) and os.readlink(pa) != os.readlink(pb):
            diffs.append(f"{name}: link target {os.readlink(pa)!r} vs {os.readlink(pb)!r}")
        if (stat.S_ISCHR(sa.st_mode) or stat.S_ISBLK(sa.st_mode)) and sa.st_rdev != sb.st_rdev:
            diffs.append(f"{name}: device {sa.st_rdev} vs {sb.st_rdev}")
        if xattrs(pa) != xattrs(pb):
            diffs.append(f"{name}: xattrs {xattrs(pa)} vs {xattrs(pb)}")
    # hard-link groups must match
    def groups(entries):
        g = {}
        for rel, p in entries.items():
            s = os.lstat(p)
            if stat.S_ISREG(s.st_mode) and s.st_nlink > 1:
                g.setdefault((s.st_dev, s.st_ino), []).append(rel)
        return sorted(sorted(v) for v in g.values())
    if groups(ea) != groups(eb):
        diffs.append(f"hard-link groups differ: {groups(ea)} vs {groups(eb)}")
    for d in diffs:
        print(d)
    sys.exit(1 if diffs else 0)

main()
