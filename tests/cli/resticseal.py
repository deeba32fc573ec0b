"""resticseal.py: restic's crypto written independently of cairn, for tests
that forge repository files (restic-format.md: AES-256-CTR + Poly1305-AES,
scrypt key files).  scrypt from hashlib, AES from the openssl command,
Poly1305 by hand.  A module (master_key, seal, unseal) and a command:

  resticseal.py REPO OUTDIR < plaintext   -> OUTDIR/<sha256> sealed with REPO's
      master key (password in $SEAL_PASSWORD or $CAIRN_PASSWORD), prints the id
  resticseal.py REPO unpacked TYPE < plaintext   -> REPO/TYPE/<id>, prints id
  resticseal.py REPO treepack < tree JSON        -> a pack holding that tree
      blob and an index file naming it, prints the tree id
"""
import base64, hashlib, json, os, subprocess, sys

def openssl(args, data):
    return subprocess.run(["openssl", "enc"] + args + ["-nosalt"], input=data,
                          stdout=subprocess.PIPE, check=True).stdout

def poly1305(r, s, msg):
    r = int.from_bytes(r, "little") & 0x0ffffffc0ffffffc0ffffffc0fffffff
    s = int.from_bytes(s, "little")
    p, acc = (1 << 130) - 5, 0
    for i in range(0, len(msg), 16):
        acc = (acc + int.from_bytes(msg[i:i + 16] + b"\x01", "little")) * r % p
    return ((acc + s) % (1 << 128)).to_bytes(16, "little")

def mac(key, iv, ct):
    s = openssl(["-aes-128-ecb", "-K", key["k"].hex(), "-nopad"], iv)
    return poly1305(key["r"], s, ct)

def ctr(key, iv, data):
    return openssl(["-aes-256-ctr", "-K", key["enc"].hex(), "-iv", iv.hex()], data)

def unseal(key, blob):
    iv, ct, tag = blob[:16], blob[16:-16], blob[-16:]
    return ctr(key, iv, ct) if mac(key, iv, ct) == tag else None

def seal(key, plain):
    iv = os.urandom(16)
    ct = ctr(key, iv, plain)
    return iv + ct + mac(key, iv, ct)

def master_key(repo, password):
    b64 = base64.b64decode
    for name in sorted(os.listdir(os.path.join(repo, "keys"))):
        kf = json.load(open(os.path.join(repo, "keys", name)))
        dk = hashlib.scrypt(password, salt=b64(kf["salt"]), n=kf["N"], r=kf["r"], p=kf["p"],
                            maxmem=1 << 30, dklen=64)
        plain = unseal({"enc": dk[:32], "k": dk[32:48], "r": dk[48:]}, b64(kf["data"]))
        if plain is not None:
            m = json.loads(plain)
            return {"enc": b64(m["encrypt"]), "k": b64(m["mac"]["k"]), "r": b64(m["mac"]["r"])}
    sys.exit("resticseal.py: no key opens with this password")

def write_named(directory, data):
    name = hashlib.sha256(data).hexdigest()
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)
    return name

def store(repo, kind, data):
    name = hashlib.sha256(data).hexdigest()
    return write_named(os.path.join(repo, kind, name[:2]) if kind == "data"
                       else os.path.join(repo, kind), data)

def main(argv):
    repo = argv[1]
    password = os.environ.get("SEAL_PASSWORD") or os.environ["CAIRN_PASSWORD"]
    key = master_key(repo, password.encode())
    plain = sys.stdin.buffer.read()
    if argv[2] == "unpacked":
        print(store(repo, argv[3], seal(key, plain)))
    elif argv[2] == "treepack":
        tree_id = hashlib.sha256(plain).hexdigest()
        blob = seal(key, plain)                  # type 1: tree, uncompressed
        header = seal(key, b"\x01" + len(blob).to_bytes(4, "little") + bytes.fromhex(tree_id))
        pack = store(repo, "data", blob + header + len(header).to_bytes(4, "little"))
        index = {"packs": [{"id": pack, "blobs": [
            {"id": tree_id, "type": "tree", "offset": 0, "length": len(blob)}]}]}
        store(repo, "index", seal(key, json.dumps(index).encode() + b"\n"))
        print(tree_id)
    else:
        print(write_named(argv[2], seal(key, plain)))

if __name__ == "__main__":
    main(sys.argv)
