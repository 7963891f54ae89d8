"""Reads a well-formed image FITS file (`.fits`, or one-member `.fits.gz`) into native arrays in one pass."""

from __future__ import annotations

import logging
import math
import mmap
import os
import warnings
import zlib
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError

log = logging.getLogger(__name__)

BLOCK = 2880  # bytes per FITS block
CARD = 80  # bytes per header card
_END = b"END" + b" " * 77
_KEY_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
_DTYPES = {8: np.dtype("u1"), 16: np.dtype(">i2"), 32: np.dtype(">i4"), 64: np.dtype(">i8"),
           -32: np.dtype(">f4"), -64: np.dtype(">f8")}
_STRUCTURAL = ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "GROUPS", "EXTNAME",
               "BSCALE", "BZERO", "BLANK")
_MAX_HEADER_BLOCKS = 1000
Images = tuple[fits.Header, np.ndarray | None, dict[str, np.ndarray]]  # primary header, its data, {EXTNAME: data}
_MAX_INFLATE_RATIO = 1032  # deflate's largest possible output/input ratio
_READ = 1 << 17  # compressed bytes read per call
_INFLATE = 1 << 19  # most decompressed bytes per zlib call


class Unsupported(Exception):
    """The file is not a plain, well-formed image FITS file (or gzip stream): astropy must read it."""


class _Plain:
    """The bytes of an uncompressed file, memory-mapped."""

    def __init__(self, fh: BinaryIO):
        if not os.fstat(fh.fileno()).st_size:
            raise Unsupported("empty file")
        self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._pos = 0

    def close(self) -> None:
        self._map.close()

    def _take(self, n: int) -> int:
        """Consumes n bytes; their offset."""
        if n > len(self._map) - self._pos:
            raise Unsupported("the file ends inside an HDU")
        self._pos += n
        return self._pos - n

    def readinto(self, out: memoryview) -> None:
        start = self._take(len(out))
        out[:] = self._map[start:start + len(out)]

    def read_array(self, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        count = math.prod(shape)
        view = np.frombuffer(self._map, dtype=dtype, count=count, offset=self._take(count * dtype.itemsize))
        out = view.astype(dtype.newbyteorder("=")).reshape(shape)  # one pass: page cache -> swapped copy
        del view  # the map closes only once no array uses it
        return out

    def skip(self, n: int) -> None:
        self._take(n)

    def at_end(self) -> bool:
        return self._pos == len(self._map)


class _Gzip:
    """The decompressed bytes of a one-member gzip file; zlib checks the CRC-32 and ISIZE trailer."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self._max_bytes = _MAX_INFLATE_RATIO * os.fstat(fh.fileno()).st_size  # the file cannot hold more
        self._dec = zlib.decompressobj(wbits=31)  # gzip header and trailer
        self._tail = b""  # compressed bytes not yet fed to zlib
        self._chunk = memoryview(b"")  # decompressed bytes, consumed up to _pos
        self._pos = 0

    def _refill(self) -> bool:
        """Decompresses the next chunk; False at the end of the stream."""
        dec = self._dec
        while not dec.eof:
            if not self._tail:
                self._tail = self._fh.read(_READ)
            try:
                if self._tail:
                    out = dec.decompress(self._tail, _INFLATE)
                    self._tail = dec.unconsumed_tail
                else:
                    out = dec.flush()  # the file has ended: whatever zlib still holds
                    if not dec.eof:
                        raise Unsupported("truncated gzip stream")
            except zlib.error as err:
                raise Unsupported(f"gzip: {err}") from err
            if out:
                self._chunk, self._pos = memoryview(out), 0
                return True
        if dec.unused_data or self._fh.read(1):
            raise Unsupported("bytes after the first gzip member")
        return False

    def readinto(self, out: memoryview) -> None:
        done = 0
        while done < len(out):
            if self._pos == len(self._chunk) and not self._refill():
                raise Unsupported("the stream ends inside an HDU")
            n = min(len(self._chunk) - self._pos, len(out) - done)
            out[done:done + n] = self._chunk[self._pos:self._pos + n]
            done += n
            self._pos += n

    def skip(self, n: int) -> None:
        while n:
            if self._pos == len(self._chunk) and not self._refill():
                raise Unsupported("the stream ends inside an HDU")
            k = min(len(self._chunk) - self._pos, n)
            self._pos += k
            n -= k

    def read_array(self, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """Converts the data chunk by chunk, while in cache, into a native-endian array."""
        count, size = math.prod(shape), dtype.itemsize
        if count * size > self._max_bytes:
            raise Unsupported(f"an HDU of shape {shape} cannot fit in the file")
        try:
            out = np.empty(shape, dtype=dtype.newbyteorder("="))
        except MemoryError as err:
            raise Unsupported(f"an HDU of shape {shape} does not fit in memory") from err
        flat = out.reshape(-1)
        done = 0  # elements
        while done < count:
            if self._pos == len(self._chunk) and not self._refill():
                raise Unsupported("the stream ends inside an HDU")
            n = min((len(self._chunk) - self._pos) // size, count - done)
            if n:
                flat[done:done + n] = np.frombuffer(self._chunk, dtype=dtype, count=n, offset=self._pos)
                self._pos += n * size
            else:  # an element split between two chunks
                one = bytearray(size)
                self.readinto(memoryview(one))
                flat[done:done + 1] = np.frombuffer(one, dtype=dtype)
                n = 1
            done += n
        return out

    def at_end(self) -> bool:
        return self._pos == len(self._chunk) and not self._refill()

    def close(self) -> None:
        self._chunk = memoryview(b"")


def _read_header(stream: _Plain | _Gzip) -> fits.Header:
    """The next header, parsed by astropy from the same string `fits.open` would give it."""
    blocks = []
    while len(blocks) < _MAX_HEADER_BLOCKS:
        buf = bytearray(BLOCK)
        stream.readinto(memoryview(buf))
        blocks.append(buf.decode("ascii"))
        for i in range(0, BLOCK, CARD):
            if buf[i:i + 3] == b"END" and buf[i + 3] not in _KEY_CHARS:  # astropy's END test, valid or not
                if buf[i:i + CARD] != _END:
                    raise Unsupported("malformed END card")
                text = "".join(blocks)
                if text.endswith("\0"):
                    raise Unsupported("header padded with NUL bytes")
                return fits.Header.fromstring(text)
    raise Unsupported("no END card")


def _layout(header: fits.Header, primary: bool) -> tuple[str, np.dtype, tuple[int, ...], bool]:
    """Name (as `HDUList` matches it), big-endian dtype, data shape, and whether the data are scaled."""
    counts = Counter(header.keys())
    naxis = header.get("NAXIS")
    if type(naxis) is not int or not 0 <= naxis <= 999:
        raise Unsupported(f"NAXIS={naxis!r}")
    if any(counts[k] > 1 for k in (*_STRUCTURAL, *(f"NAXIS{i}" for i in range(1, naxis + 1)))):
        raise Unsupported("a structural keyword is repeated")
    first = header.cards[0]
    if primary and (first.keyword != "SIMPLE" or first.value is not True or "GROUPS" in header or "EXTNAME" in header):
        raise Unsupported("not a plain primary image HDU")
    if not primary and (first.keyword != "XTENSION" or str(first.value).rstrip() != "IMAGE"):
        raise Unsupported(f"XTENSION={first.value!r} is not an image")
    bitpix, axes = header.get("BITPIX"), [header.get(f"NAXIS{i}") for i in range(1, naxis + 1)]
    if type(bitpix) is not int or bitpix not in _DTYPES or any(type(n) is not int or n < 0 for n in axes):
        raise Unsupported(f"BITPIX={bitpix!r}, axes {axes}")
    if header.get("PCOUNT", 0) != 0 or header.get("GCOUNT", 1) != 1:
        raise Unsupported("PCOUNT/GCOUNT")
    name = "PRIMARY" if primary else str(header.get("EXTNAME", "")).strip().upper()
    scaled = any(k in header for k in ("BSCALE", "BZERO", "BLANK"))
    return name, _DTYPES[bitpix], tuple(reversed(axes)), scaled


def read_images(path: Path, names: Collection[str]) -> Images:
    """The primary header and data, and the data of the first image extension with each of `names`.

    Headers, names and arrays are those `fits.open(path)` gives (`hdul[0].header`, `hdul[0].data`,
    `hdul[name].data`), but native-endian and read in one pass: a gzip file is inflated in chunks
    that are copied straight into the arrays; the data of other HDUs are never kept.

    Args:
        path: A `.fits` or `.fits.gz` file (gzip when the name ends in `.gz`).
        names: EXTNAMEs (upper case) whose data are wanted.

    Returns:
        Primary header, primary data (native dtype of BITPIX; None when the primary HDU has none, as in
        a MaNGA LOGCUBE), {name: data} for the names found.

    Raises:
        Unsupported: the file is anything else than a single-member gzip stream (or plain file) of
            a primary image and image extensions, unscaled where read, with nothing after
            the last HDU, and no astropy warning; corrupt, truncated and multi-member files included.
        OSError: the file cannot be opened or read.
    """
    with open(path, "rb", buffering=0) as fh, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stream = _Gzip(fh) if path.name.endswith(".gz") else _Plain(fh)
        try:
            images = _read_stream(stream, names)
        except (VerifyError, ValueError, TypeError, KeyError, IndexError) as err:  # from astropy's card parsing
            raise Unsupported(f"{type(err).__name__}: {err}") from err
        finally:
            stream.close()
    if caught:
        raise Unsupported(f"astropy warned: {caught[0].message}")
    return images


def try_read_images(path: Path, names: Collection[str]) -> Images | None:
    """`read_images`, or None when the file is one for astropy (`Unsupported`, or unreadable: astropy then
    words the error); the reason is logged at debug level."""
    try:
        return read_images(path, names)
    except (Unsupported, OSError) as err:
        log.debug("%s: read with astropy (%s)", path, err)
        return None


def _read_stream(stream: _Plain | _Gzip, names: Collection[str]) -> Images:
    """Reads every HDU of the stream, keeping the data `read_images` returns."""
    header = _read_header(stream)
    _, dtype, shape, scaled = _layout(header, primary=True)
    data = None
    if _nbytes(dtype, shape):
        if scaled:
            raise Unsupported("the primary HDU is scaled")
        data = stream.read_array(dtype, shape)
        stream.skip(-data.nbytes % BLOCK)
    found: dict[str, np.ndarray] = {}
    extensions = 0
    while not stream.at_end():
        extensions += 1
        hdr = _read_header(stream)
        name, dtype, shape, scaled = _layout(hdr, primary=False)
        size = _nbytes(dtype, shape)
        if name in names and name not in found:  # `hdul[name]` is the first match
            if scaled or size == 0:
                raise Unsupported(f"extension {name} is scaled or has no data")
            found[name] = stream.read_array(dtype, shape)
            stream.skip(-size % BLOCK)
        else:
            stream.skip(size + -size % BLOCK)
    if header.get("EXTEND") is not True and extensions:  # HDUList.update_extend would set it in the header
        raise Unsupported("EXTEND is not T but there are extensions")
    return header, data, found


def _nbytes(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    """Bytes of data (0 for NAXIS = 0), before padding to whole blocks."""
    return math.prod(shape) * dtype.itemsize if shape else 0
