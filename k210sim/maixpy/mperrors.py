"""MicroPython 1.11 wording for exceptions and tracebacks (MaixPy v0.6.2 is built on v1.11-64).

User code runs as CPython bytecode, so CPython raises its own exceptions with its own texts.
This module turns them into what the board prints: MicroPython's class names (no
FileNotFoundError, ModuleNotFoundError, ...), its messages ("name 'x' isn't defined",
"unsupported types for __add__: 'int', 'str'", "divide by zero"), its OSError form
("[Errno 2] ENOENT", or "20" for errnos MicroPython has no name for) and its traceback layout
(py/obj.c mp_obj_print_exception): only frames of user code (<stdin>, boot.py, main.py, imported
.py files), most recent call last, a frame without a function name for syntax errors.
"""
from __future__ import annotations

import errno as _errno
import re
from types import TracebackType
from typing import Iterable

# py/moduerrno.c default MICROPY_PY_UERRNO_LIST: the errnos MicroPython can name.
MP_ERRNO_NAMES: dict[int, str] = {
    1: "EPERM", 2: "ENOENT", 5: "EIO", 9: "EBADF", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES",
    17: "EEXIST", 19: "ENODEV", 21: "EISDIR", 22: "EINVAL", 95: "EOPNOTSUPP",
    98: "EADDRINUSE", 103: "ECONNABORTED", 104: "ECONNRESET", 105: "ENOBUFS",
    107: "ENOTCONN", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 113: "EHOSTUNREACH",
    114: "EALREADY", 115: "EINPROGRESS",
}
EPERM = 1
ENOENT, EIO, EBADF, EACCES, EEXIST, ENOTDIR, EISDIR, EINVAL, ENOSPC, ENOMEM = (
    2, 5, 9, 13, 17, 20, 21, 22, 28, 12)

_OP_NAMES = {
    "+": "__add__", "-": "__sub__", "*": "__mul__", "/": "__truediv__", "//": "__floordiv__",
    "%": "__mod__", "**": "__pow__", "<<": "__lshift__", ">>": "__rshift__", "&": "__and__",
    "|": "__or__", "^": "__xor__", "@": "__matmul__", "+=": "__iadd__", "-=": "__isub__",
    "*=": "__imul__", "/=": "__itruediv__", "//=": "__ifloordiv__", "%=": "__imod__",
    "<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__",
}

# CPython message -> MicroPython message, first match wins.
_REWRITES: list[tuple[re.Pattern[str], object]] = [
    (re.compile(r"^name '(.+)' is not defined$"), r"name '\1' isn't defined"),
    (re.compile(r"^free variable '(.+)' referenced before assignment.*$"),
     r"local variable referenced before assignment"),
    (re.compile(r"^(?:local variable|cannot access local variable) '(.+)'.*$"),
     "local variable referenced before assignment"),
    (re.compile(r"^module '(.+)' has no attribute '(.+)'$"), r"'module' object has no attribute '\2'"),
    (re.compile(r"^'(.+)' object has no attribute '([^']+)'.*$"), r"'\1' object has no attribute '\2'"),
    (re.compile(r"^type object '(.+)' has no attribute '([^']+)'.*$"),
     r"type object '\1' has no attribute '\2'"),
    (re.compile(r"^unsupported operand type\(s\) for (\S+?):? '(.+)' and '(.+)'$"),
     lambda m: f"unsupported types for {_OP_NAMES.get(m.group(1), m.group(1))}: "
               f"'{m.group(2)}', '{m.group(3)}'"),
    (re.compile(r"^'(.+)' not supported between instances of '(.+)' and '(.+)'$"),
     lambda m: f"unsupported types for {_OP_NAMES.get(m.group(1), m.group(1))}: "
               f"'{m.group(2)}', '{m.group(3)}'"),
    (re.compile(r"^bad operand type for unary (.+): '(.+)'$"),
     lambda m: f"unsupported type for {dict(zip('-+~', ('__neg__', '__pos__', '__invert__'))).get(m.group(1), m.group(1))}: '{m.group(2)}'"),
    (re.compile(r"^can only concatenate str \(not \"(.+)\"\) to str$"),
     r"can't convert '\1' object to str implicitly"),
    (re.compile(r"^can't concat (\S+) to (\S+)$"), r"can't convert '\1' object to \2 implicitly"),
    (re.compile(r"^'(.+)' object is not (callable|iterable|subscriptable)$"), r"'\1' object isn't \2"),
    (re.compile(r"^'(.+)' object is not an iterator$"), r"'\1' object isn't an iterator"),
    (re.compile(r"^'(.+)' object does not support item assignment$"),
     r"'\1' object doesn't support item assignment"),
    (re.compile(r"^'(.+)' object does not support item deletion$"),
     r"'\1' object doesn't support item deletion"),
    (re.compile(r"^(?:integer |float )?(?:division|modulo)(?: or modulo)? by zero$"), "divide by zero"),
    (re.compile(r"^float (?:division|modulo|floor division)(?: by zero)?$"), "divide by zero"),
    (re.compile(r"^integer division or modulo by zero$"), "divide by zero"),
    (re.compile(r"^No module named '(.+)'$"), r"no module named '\1'"),
    (re.compile(r"^cannot import name '([^']+)'.*$"), r"cannot import name \1"),
    (re.compile(r"^invalid literal for int\(\) with base (\d+): (.+)$"),
     r"invalid syntax for integer with base \1"),
    (re.compile(r"^could not convert string to float: (.+)$"), r"invalid syntax for number"),
    (re.compile(r"^(list|tuple|string|bytes|bytearray) index out of range$"), r"\1 index out of range"),
    (re.compile(r"^list assignment index out of range$"), "list index out of range"),
    (re.compile(r"^maximum recursion depth exceeded.*$"), "maximum recursion depth exceeded"),
    (re.compile(r"^([\w.<>]+)\(\) takes (\d+) positional arguments? but (\d+) (?:was|were) given$"),
     r"function takes \2 positional arguments but \3 were given"),
    (re.compile(r"^([\w.<>]+)\(\) missing (\d+) required positional arguments?: .*$"),
     r"function missing \2 required positional arguments"),
    (re.compile(r"^([\w.<>]+)\(\) got an unexpected keyword argument '(.+)'$"),
     "unexpected keyword argument '\\2'"),
    (re.compile(r"^not enough values to unpack \(expected \d+, got (\d+)\)$"),
     r"need more than \1 values to unpack"),
    (re.compile(r"^too many values to unpack \(expected (\d+)\)$"),
     r"too many values to unpack (expected \1)"),
]

# CPython exception classes MicroPython does not have, mapped to what it raises instead.
_CLASS_NAMES = {
    "ModuleNotFoundError": "ImportError", "RecursionError": "RuntimeError",
    "UnicodeDecodeError": "UnicodeError", "UnicodeEncodeError": "UnicodeError",
    "UnicodeTranslateError": "UnicodeError", "TabError": "IndentationError",
    "FloatingPointError": "ArithmeticError", "BufferError": "Exception",
    "ProcessLookupError": "OSError", "ConnectionError": "OSError", "TimeoutError": "OSError",
}


def mp_message(text: str) -> str:
    """One CPython exception message in MicroPython's words (unchanged if not recognised)."""
    for pattern, repl in _REWRITES:
        m = pattern.match(text)
        if m:
            return repl(m) if callable(repl) else m.expand(repl)  # type: ignore[arg-type]
    return text


def mp_class_name(exc: BaseException) -> str:
    t = type(exc)
    if isinstance(exc, OSError) and t.__module__ == "builtins":
        return "OSError"
    return _CLASS_NAMES.get(t.__name__, t.__name__)


def mp_oserror(code: int) -> OSError:
    """OSError as MicroPython raises it: str() is '[Errno 2] ENOENT' (or '20' if unnamed)."""
    name = MP_ERRNO_NAMES.get(code)
    return OSError(code, name) if name else OSError(code)


def oserror_from_text(text: str) -> OSError:
    """An OSError whose str() is exactly ``text`` ('[Errno 2] ENOENT' from a profile)."""
    m = re.fullmatch(r"\[Errno (\d+)\] (\S+)", text)
    if m:
        return OSError(int(m.group(1)), m.group(2))
    return OSError(text)


def translate(exc: BaseException) -> BaseException:
    """Rewrite a CPython exception's message in place into MicroPython's words; returns it."""
    if getattr(exc, "_mp_done", False):
        return exc
    try:
        if isinstance(exc, OSError):
            # Emulated calls raise mp_oserror(); a host OSError reaching here is normalised
            # (its host-side strerror dropped). Host paths never get here: k210sim.maixpy.vfs
            # converts every host OSError.
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            name = MP_ERRNO_NAMES.get(code) if code is not None else None
            if name is not None and exc.args != (code, name):
                exc.args = (code, name)
                exc.errno, exc.strerror = code, name
            elif code is not None and name is None and exc.args != (code,):
                exc.args = (code,)
        elif not isinstance(exc, SyntaxError) and len(exc.args) == 1 \
                and isinstance(exc.args[0], str) and type(exc).__module__ == "builtins":
            new = mp_message(exc.args[0])
            if new != exc.args[0]:
                exc.args = (new,)
        setattr(exc, "_mp_done", True)
    except (AttributeError, TypeError):
        pass
    return exc


def exc_text(exc: BaseException) -> str:
    """The text after 'Name: ' in a MicroPython traceback (mp_obj_exception_print)."""
    args = exc.args
    if isinstance(exc, SyntaxError) and type(exc).__module__ == "builtins":
        return exc.msg or "invalid syntax"
    if not args:
        return ""
    if isinstance(exc, OSError) and isinstance(args[0], int):
        name = MP_ERRNO_NAMES.get(args[0])
        if name is not None:
            return f"[Errno {args[0]}] {name}"
        if len(args) == 1:
            return str(args[0])
    if len(args) == 1:
        try:
            return str(args[0])
        except Exception:  # a user __str__ that raises: print what MicroPython would, the repr
            return object.__repr__(args[0])
    return repr(tuple(args))


def user_frames(tb: TracebackType | None, user_files: Iterable[str] | None = None
                ) -> list[tuple[str, int, str]]:
    """(file, line, function) for each traceback entry in user code, outermost first."""
    files = set(user_files) if user_files is not None else None
    out: list[tuple[str, int, str]] = []
    while tb is not None:
        code = tb.tb_frame.f_code
        name = code.co_filename
        if (files is None and is_user_filename(name)) or (files is not None and name in files):
            out.append((name, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return out


def is_user_filename(name: str) -> bool:
    """Sandboxed code is compiled with board-side names; host modules have absolute host paths."""
    return name.startswith("<") or name.startswith("/flash/") or name.startswith("/sd/") \
        or ("/" not in name and name.endswith(".py"))


def format_traceback(exc: BaseException) -> str:
    """The whole traceback exactly as MicroPython prints it, lines ending in '\\n'."""
    translate(exc)
    lines: list[str] = []
    if isinstance(exc, SyntaxError) and type(exc).__module__ == "builtins" \
            and getattr(exc, "_mp_syntax", False):
        lines.append("Traceback (most recent call last):")
        lines.append(f'  File "{exc.filename}", line {exc.lineno}')
    else:
        frames = user_frames(exc.__traceback__)
        if frames:
            lines.append("Traceback (most recent call last):")
            for fname, line, func in frames:
                lines.append(f'  File "{fname}", line {line}, in {func}')
    lines.append(f"{mp_class_name(exc)}: {exc_text(exc)}")
    return "\n".join(lines) + "\n"


def mp_syntax_error(kind: str, msg: str, filename: str, lineno: int) -> SyntaxError:
    """A compile error as the board reports it (File line without ', in ...')."""
    cls = IndentationError if kind == "IndentationError" else SyntaxError
    err = cls(msg)
    err.msg = msg
    err.filename = filename
    err.lineno = lineno
    setattr(err, "_mp_syntax", True)
    return err


_ = _errno  # keep the stdlib name handy for readers comparing numbers
