"""gguf.py — a small GGUF v3 reader and writer (standard library + numpy for tensor data).

Layout (docs/gguf.md): magic "GGUF", u32 version 3, u64 tensor count, u64 KV count, the KVs
(gguf-string key, u32 value type, value), the tensor infos (name, u32 n_dims, u64 ne[], u32
ggml type, u64 offset), zero padding to the alignment (32), then the tensor data, each tensor
starting at a multiple of the alignment. ne[0] is the contiguous axis, so a PyTorch weight
[n_out, n_in] is written as ne = (n_in, n_out) with the same bytes.
"""
import struct

ALIGNMENT = 32

# KV value types
U8, I8, U16, I16, U32, I32, F32V, BOOL, STR, ARR, U64, I64, F64 = range(13)
_SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32V: "<f",
           BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}

# ggml tensor types this tool writes and reads
F32, F16 = 0, 1
_TYPE_NAMES = {F32: "F32", F16: "F16"}
_TYPE_BYTES = {F32: 4, F16: 2}


class Reader:
    """Reads the KVs (in file order) and the tensor infos; tensor() returns numpy arrays."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        self.pos = 0
        if self._take(4) != b"GGUF":
            raise ValueError("%s: not a GGUF file" % path)
        version, n_tensors, n_kv = struct.unpack("<IQQ", self._take(20))
        if version != 3:
            raise ValueError("%s: GGUF version %d, expected 3" % (path, version))
        self.kv = {}          # key -> (type, value); arrays: (ARR, (elem_type, [values]))
        for _ in range(n_kv):
            key = self._str()
            vtype = self._u32()
            self.kv[key] = (vtype, self._value(vtype))
        align = self.value("general.alignment", ALIGNMENT)
        self.tensors = {}     # name -> (type, ne tuple, offset)
        for _ in range(n_tensors):
            name = self._str()
            nd = self._u32()
            ne = struct.unpack("<%dQ" % nd, self._take(8 * nd))
            ttype = self._u32()
            off = struct.unpack("<Q", self._take(8))[0]
            self.tensors[name] = (ttype, ne, off)
        self.data_start = (self.pos + align - 1) // align * align

    def _take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("%s: truncated at byte %d" % (self.path, self.pos))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def _u32(self):
        return struct.unpack("<I", self._take(4))[0]

    def _str(self):
        n = struct.unpack("<Q", self._take(8))[0]
        return self._take(n).decode("utf-8")

    def _value(self, vtype):
        if vtype == STR:
            return self._str()
        if vtype == ARR:
            et = self._u32()
            n = struct.unpack("<Q", self._take(8))[0]
            return (et, [self._value(et) for _ in range(n)])
        fmt = _SCALAR[vtype]
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]

    def value(self, key, default=None):
        if key not in self.kv:
            return default
        vtype, v = self.kv[key]
        return v[1] if vtype == ARR else v

    def tensor(self, name):
        import numpy as np
        ttype, ne, off = self.tensors[name]
        if ttype not in _TYPE_BYTES:
            raise ValueError("%s: tensor %s has type %d; this reader takes F32 and F16" % (self.path, name, ttype))
        n = 1
        for d in ne:
            n *= d
        dt = np.float32 if ttype == F32 else np.float16
        a = np.frombuffer(self.data, dtype=dt, count=n, offset=self.data_start + off)
        return a.reshape(tuple(reversed(ne))).astype(np.float32)


class Writer:
    """Collects KVs (kept in insertion order) and tensors, then writes the file."""

    def __init__(self):
        self.kvs = []
        self.tensors = []

    def add(self, key, vtype, value):
        self.kvs.append((key, vtype, value))

    def add_str(self, key, v):
        self.add(key, STR, v)

    def add_u32(self, key, v):
        self.add(key, U32, int(v))

    def add_f32(self, key, v):
        self.add(key, F32V, float(v))

    def add_bool(self, key, v):
        self.add(key, BOOL, bool(v))

    def add_arr(self, key, elem_type, values):
        self.add(key, ARR, (elem_type, list(values)))

    def copy_kv(self, reader, key):
        """Copies a key exactly as another file stores it (type and value)."""
        vtype, v = reader.kv[key]
        self.add(key, vtype, v)

    def add_tensor(self, name, array, ttype=F32, ne=None):
        """array: numpy array in PyTorch (row-major) order; ne defaults to its reversed shape."""
        import numpy as np
        a = np.ascontiguousarray(array, dtype=np.float32 if ttype == F32 else np.float16)
        self.tensors.append((name, tuple(ne) if ne else tuple(reversed(a.shape)), ttype, a.tobytes()))

    @staticmethod
    def _pack_str(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _pack_value(self, vtype, v):
        if vtype == STR:
            return self._pack_str(v)
        if vtype == ARR:
            et, vals = v
            return struct.pack("<IQ", et, len(vals)) + b"".join(self._pack_value(et, x) for x in vals)
        return struct.pack(_SCALAR[vtype], v)

    def write(self, path):
        head = [b"GGUF", struct.pack("<IQQ", 3, len(self.tensors), len(self.kvs))]
        for key, vtype, v in self.kvs:
            head += [self._pack_str(key), struct.pack("<I", vtype), self._pack_value(vtype, v)]
        off = 0
        offsets = []
        for name, ne, ttype, data in self.tensors:
            head += [self._pack_str(name), struct.pack("<I", len(ne)), struct.pack("<%dQ" % len(ne), *ne),
                     struct.pack("<IQ", ttype, off)]
            offsets.append(off)
            off += (len(data) + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
        h = b"".join(head)
        h += b"\0" * ((-len(h)) % ALIGNMENT)
        with open(path, "wb") as f:
            f.write(h)
            for name, ne, ttype, data in self.tensors:
                f.write(data)
                f.write(b"\0" * ((-len(data)) % ALIGNMENT))


def type_name(t):
    return _TYPE_NAMES.get(t, str(t))
