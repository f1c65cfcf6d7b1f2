#!/usr/bin/env python3
"""The mixed disk of the benchmarks (scripts/bench-ova, scripts/bench-appliance), deterministic:
per 64 MiB, 24 MiB of text-like lines (logs, configuration), 16 MiB of this machine's binaries,
8 MiB of random bytes (compressed/encrypted data) and 16 MiB of zeros (free space).

    python3 scripts/lib/mixed-disk.py PATH GIB
"""
import glob, os, random, sys
path, gib = sys.argv[1], int(sys.argv[2])
MIB = 1 << 20
rng = random.Random(4)
vocab = ("listen frontend backend server bind mode tcp http timeout connect client check "
         "inter rise fall maxconn systemd kernel Started Stopped network eth0 192.168.1.10 "
         "10.0.0.1 /usr/lib/x86_64-linux-gnu error warning info debug 2024-06-01T12:00:00Z "
         "root daemon session opened closed for user by uid 0 1 2 3 42 65535").split()
lines, size = [], 0
while size < 24 * MIB:
    line = " ".join(rng.choice(vocab) for _ in range(rng.randint(4, 16))) + "\n"
    lines.append(line.encode()); size += len(line)
text = b"".join(lines)[:24 * MIB]
blob = bytearray()
for f in sorted(glob.glob("/usr/bin/*") + glob.glob("/usr/lib/x86_64-linux-gnu/*.so*")):
    if len(blob) >= 96 * MIB:
        break
    try:
        if os.path.isfile(f) and not os.path.islink(f):
            blob += open(f, "rb").read()
    except OSError:
        pass
blob = bytes(blob.ljust(96 * MIB, b"\x90"))
with open(path, "wb") as out:
    for i in range(gib * 16):
        t = bytearray(text)
        t[(i * 7919) % (len(t) - 32):][:24] = b"block %016d\n" % i
        out.write(t)
        start = (i * 16 * MIB) % (len(blob) - 16 * MIB)
        out.write(blob[start:start + 16 * MIB])
        out.write(rng.randbytes(8 * MIB))
        out.write(bytes(16 * MIB))
