"""Every file makemore writes goes through write_file, which keeps two promises:

- it never writes through a symbolic link: the new file is written beside its name and renamed over it, so a
  link there would be replaced, not followed; a link at the name is refused before anything is written;
- it replaces only a file that makemore wrote there itself. Each folder it writes into keeps a small record,
  MANIFEST, of the files it wrote, their size and a fingerprint of their contents (so that a copied run folder
  is still makemore's); any other file at the name (the user's own, or one changed since) is refused in one
  line, and left as it was.

The write is atomic: the new file is written in full, fsynced, then renamed, so a crash or a full disk never
leaves half a file, and the earlier version (if any) survives a failed write."""
import csv
import hashlib
import io
import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from makemore.errors import MakemoreError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; two processes that write one folder are then the user's to avoid
    fcntl = None

MANIFEST = ".makemore-files.json"  # in each folder makemore writes into: {name: [size, fingerprint]}
EDGE_BYTES = 1 << 16  # a file's fingerprint reads this much of its start and of its end
MANIFEST_BYTES = 1_000_000  # a record larger than this is not one of makemore's


def write_file(path, write):
    """Call write(file) on a new binary file and put it at `path` (see the module's docstring)."""
    path = Path(path)
    with _folder_locked(path.parent):
        written = _record(path.parent)
        existed = check_writable(path, written)
        _replace(path, write, existed)
        written[path.name] = _signature(path)
        _replace(path.parent / MANIFEST, lambda f: f.write(json.dumps(written).encode()), True)


def write_text(path, text):
    write_file(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_csv(path, columns, rows, **options):
    """rows (dicts) under a header of columns; options go to csv.DictWriter (extrasaction="ignore": drop other keys)."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns, **options)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, text.getvalue())


def check_writable(path, written=None):
    """Whether a file makemore wrote is at `path` (to be replaced); refused in one line when the name is a link, a
    folder or a file that makemore did not write there (or that changed since). Nothing there: False."""
    path = Path(path)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    except OSError as e:
        raise MakemoreError(f"cannot write {path} ({e.strerror or e}); check the folder's permissions") from None
    if stat.S_ISLNK(st.st_mode):
        raise MakemoreError(f"{path} is a symbolic link, and makemore does not write through links; remove the link, "
                            "or pass another folder or name to write to")
    if not stat.S_ISREG(st.st_mode):
        raise MakemoreError(f"{path} is not a regular file (a folder, a device or a pipe); pass another folder or "
                            "name to write to")
    if written is None:
        written = _record(path.parent)
    try:
        ours = written.get(path.name) == _signature(path)
    except OSError as e:
        raise MakemoreError(f"cannot read {path} ({e.strerror or e}), so makemore will not write over it; move it "
                            "away, or pass another folder or name to write to") from None
    if not ours:
        raise MakemoreError(f"{path} exists and makemore did not write it (or it was changed since); makemore does "
                            "not write over files of yours: move it away, or pass another folder or name to write to")
    return True


def check_outputs(folder, *names):
    """Refuse, before the work that makes them, outputs that write_file would refuse at the end (see
    check_writable): a comparison or a transfer curve does not train for an hour to fail at its table."""
    for name in names:
        check_writable(Path(folder) / name)


def adopt(folder, names):
    """Record the files of these names in folder as makemore's: for a run written before folders kept a record,
    so that it can be resumed; a folder that has a record already keeps it."""
    folder = Path(folder)
    with _folder_locked(folder):
        if (folder / MANIFEST).exists():
            return
        written = {}
        for name in names:
            path = folder / name
            if not path.is_symlink() and path.is_file():
                written[name] = _signature(path)
        _replace(folder / MANIFEST, lambda f: f.write(json.dumps(written).encode()), False)


def make_dir(path):
    """Make a folder (and its parents) for a command's output, or say in one line why it cannot be made."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise MakemoreError(f"{path} exists and is not a folder; pass an --out-dir or --name that is free") from None
    except OSError as e:
        raise MakemoreError(f"cannot make the folder {path} ({e.strerror or e}); pass an --out-dir where you can "
                            "write") from None


def open_appending(path):
    """A file to append to (a log, a lock), created if need be, never through a link at its name."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.fdopen(os.open(path, flags, 0o644), "a")
    except OSError as e:
        raise MakemoreError(f"cannot open {path} ({e.strerror or e}); it must be a plain file that you can write, not "
                            "a link: remove it") from None


def _signature(path):
    """[size, a hash of the first and last EDGE_BYTES]: cheap for a checkpoint of any size, and a file of the
    user's at the name (or one edited since) differs from it."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        digest = hashlib.sha256(f.read(EDGE_BYTES))
        if size > EDGE_BYTES:
            f.seek(max(EDGE_BYTES, size - EDGE_BYTES))
            digest.update(f.read(EDGE_BYTES))
    return [size, digest.hexdigest()[:32]]


def _record(folder):
    """The folder's record of the files makemore wrote in it: {} when there is none, or when it is damaged
    (then nothing there counts as makemore's)."""
    path = folder / MANIFEST
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode) or st.st_size > MANIFEST_BYTES:
            return {}
        written = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(written, dict):
        return {}
    return {name: sig for name, sig in written.items() if isinstance(sig, list)}


@contextmanager
def _folder_locked(folder):
    """Hold an exclusive lock on the folder while its record is read and rewritten (two processes that write
    into one folder, as sweep workers do, would otherwise drop each other's entries)."""
    fd = None
    if fcntl is not None and hasattr(os, "O_DIRECTORY"):
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise MakemoreError(f"cannot write into {folder} ({e.strerror or e}); pass an --out-dir where you can "
                                "write") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a filesystem that cannot lock a folder (some network mounts): write unlocked, as on Windows
            pass
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock


def _replace(path, write, existed):
    """Call write(file) on a temporary file beside `path`, fsync it, then rename it over `path`."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # a folder that cannot be written: say which
        raise MakemoreError(f"could not write {path} ({e.strerror or e}); check that {path.parent} can be written "
                            "(its permissions, read-only or full disk)") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        # torch.save reports a write that failed (a full disk) as a RuntimeError of its own
        if isinstance(e, (OSError, RuntimeError)):
            reason = getattr(e, "strerror", None) or str(e).strip().splitlines()[0]
            kept = ("the previous version of it is intact: free disk space (or fix permissions) and resume" if existed
                    else "nothing was written: free disk space (or fix permissions) and run the command again")
            raise MakemoreError(f"could not write {path} ({reason}); {kept}") from None
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself survive a power cut
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
