"""The restricted namespace user code runs in: guards, builtins, imports.

Compiled by k210sim.maixpy.policy, user code reaches objects only through these guards:
- ``_getattr_`` (and the ``getattr``/``hasattr`` builtins): refuses inspection attributes
  (``gi_frame``, ``f_globals``, ``tb_*``, ``co_*``...), dunders other than the data-model hooks
  (no ``__subclasses__``, ``__globals__``, ``__dict__``, ``__bases__``, ``__self__``...),
  single-underscore attributes except those of the user's own classes, instances and modules,
  and on built-in exception objects anything but ``args``/``errno``/``value``/``code``. Refusals
  are ``AttributeError: 'X' object has no attribute 'y'``, as MicroPython (which has none of
  these) says. ``str.format``/``format_map`` are replaced by a formatter whose field lookups go
  through the same guard.
- ``_write_``: attribute stores only on the user's own instances, classes and modules; item
  stores anywhere.
- builtins: MicroPython's set, with ``open`` confined to /flash and /sd (k210sim.maixpy.vfs),
  ``__import__`` limited to the emulated modules and the user's .py files on sys.path, ``print``,
  ``input`` and ``help`` on the board console, ``exec``/``eval`` recompiled through the policy,
  ``type`` (one argument, or class creation through the same path as ``class``), ``globals()``
  and ``locals()`` at module level returning copies without the guards. No ``vars``, ``compile``,
  ``breakpoint``, ``memoryview`` tricks beyond the buffer protocol.
- the real ``type`` never reaches user code: the ``type`` builtin, ``type(x)`` and ``x.__class__``
  give ``TypeStandIn`` (shows as ``<class 'type'>``; calling it is the ``type`` builtin) for
  ``type`` and every host metaclass, so user code cannot make a metaclass; ``make_class`` refuses
  metaclass bases. User classes and modules are known by identity (``IdentityRegistry``), never
  by ``==``/``hash``, which user classes control.
- ``repr``/``help`` show the board's built-ins as MicroPython 1.11 does (``<function>``,
  ``<bound_method>``), never host module or class names (``mp_repr``). Known residue: host
  ``str()``/``%s``/``format`` of a built-in function still give CPython's text.
The sandbox stops escapes to the host; it does not bound CPU or memory use (a later issue).
"""
from __future__ import annotations

import operator
import string
import sys
import types
import weakref
from typing import Any, Callable

from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence

from k210sim.maixpy.mperrors import translate
from k210sim.maixpy.policy import METHOD_NAMES, SAFE_DUNDER_ANY, compile_user, is_dunder, \
    is_guard_name
from k210sim.program import ProgramHalted

try:  # the C helper string.Formatter itself uses
    from _string import formatter_field_name_split
except ImportError:  # pragma: no cover
    formatter_field_name_split = None  # type: ignore[assignment]

FORBIDDEN_ATTRS = frozenset({
    "tb_frame", "tb_next", "f_back", "f_builtins", "f_code", "f_generator", "f_globals",
    "f_locals", "f_trace", "co_code", "gi_frame", "gi_code", "gi_yieldfrom", "cr_await",
    "cr_frame", "cr_code", "cr_origin", "ag_await", "ag_frame", "ag_code", "mro",
})
FORBIDDEN_PREFIXES = ("f_", "tb_", "co_", "gi_", "cr_", "ag_")
# what CPython's compiler itself puts in a class namespace (3.13 adds the last two)
_COMPILER_CLASS_KEYS = frozenset({"__module__", "__qualname__", "__classcell__", "__doc__",
                                  "__annotations__", "__firstlineno__", "__static_attributes__"})
EXC_ATTRS = frozenset({"args", "errno", "value", "code", "strerror"})
_MP_TYPE_NAMES = {"builtin_function_or_method": "function", "method": "bound_method",
                  "method-wrapper": "function", "wrapper_descriptor": "function",
                  "NoneType": "NoneType", "mappingproxy": "dict", "ModuleType": "module"}

_IOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift, ">>=": operator.irshift,
    "|=": operator.ior, "^=": operator.ixor, "&=": operator.iand, "//=": operator.ifloordiv,
    "@=": operator.imatmul,
}

MP_EXCEPTIONS = (
    "ArithmeticError AssertionError AttributeError BaseException EOFError Exception "
    "GeneratorExit ImportError IndentationError IndexError KeyError KeyboardInterrupt "
    "LookupError MemoryError NameError NotImplementedError OSError OverflowError RuntimeError "
    "StopIteration SyntaxError SystemExit TypeError UnicodeError ValueError ZeroDivisionError"
).split()
MP_BUILTINS = (
    "abs all any bin bool bytearray bytes callable chr classmethod complex dict dir divmod "
    "enumerate filter float frozenset hash hex id int isinstance issubclass iter len list map "
    "max memoryview min next object oct ord pow property range repr reversed round set slice "
    "sorted staticmethod str sum super tuple zip"
).split()


def mp_type_name(t: type) -> str:
    return _MP_TYPE_NAMES.get(t.__name__, t.__name__)


class IdentityRegistry:
    """A weak set compared by identity: ``{id(obj): weakref}``, member only if ``ref() is obj``.

    A WeakSet compares with ``==``/``hash``, which a user class (or its metaclass) defines, so a
    user object could pass for a host class; identity cannot be spoofed.
    """

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref] = {}

    def add(self, obj: Any) -> None:
        key = id(obj)

        def gone(ref: weakref.ref, key: int = key, refs: dict = self._refs) -> None:
            if refs.get(key) is ref:
                del refs[key]
        self._refs[key] = weakref.ref(obj, gone)

    def __contains__(self, obj: object) -> bool:
        ref = self._refs.get(id(obj))
        return ref is not None and ref() is obj

    def __len__(self) -> int:
        return sum(1 for ref in list(self._refs.values()) if ref() is not None)


class TypeStandIn:
    """What user code gets for ``type`` (and any host metaclass): never the real one.

    Shows as ``<class 'type'>``; ``T(x)`` is ``type(x)`` and ``T(name, bases, dict)`` makes a
    class through ``Guards.make_class``; ``isinstance(C, T)`` works. It is not a class, so it
    cannot be a base (``class M(type): ...`` is "type is not an acceptable base type").
    """

    __slots__ = ("_guards",)
    __name__ = "type"

    def __init__(self, guards: "Guards") -> None:
        self._guards = guards

    def __call__(self, *args: Any) -> Any:
        return self._guards.type_builtin(*args)

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, type)

    def __subclasscheck__(self, cls: Any) -> bool:
        return isinstance(cls, type) and issubclass(cls, type)

    def __repr__(self) -> str:
        return "<class 'type'>"

    __str__ = __repr__


def _is_metaclass(obj: Any) -> bool:
    return isinstance(obj, type) and (issubclass(obj, type) or obj is TypeStandIn)


def is_builtin_method(obj: Any, user_classes: Any = ()) -> bool:
    """A bound method MicroPython shows as ``<bound_method>``: on a user object, or a C
    method of a built-in object (``[].append``); host methods are the board's functions."""
    if isinstance(obj, types.MethodType):
        owner = obj.__self__
        return type(owner) in user_classes or owner in user_classes
    if isinstance(obj, types.BuiltinMethodType):
        owner = getattr(obj, "__self__", None)
        return owner is not None and not isinstance(owner, types.ModuleType)
    return isinstance(obj, (types.MethodWrapperType, types.MethodDescriptorType))


def attr_error(obj: Any, name: str, user_classes: Any = ()) -> AttributeError:
    if isinstance(obj, types.MethodType) and type(obj.__self__) not in user_classes \
            and not isinstance(obj.__self__, type):
        # the board's builtins and module functions are plain functions on MicroPython
        return AttributeError(f"'function' object has no attribute '{name}'")
    if isinstance(obj, TypeStandIn):
        return AttributeError(f"type object 'type' has no attribute '{name}'")
    if isinstance(obj, type):
        return AttributeError(f"type object '{obj.__name__}' has no attribute '{name}'")
    if isinstance(obj, types.ModuleType):
        return AttributeError(f"'module' object has no attribute '{name}'")
    return AttributeError(f"'{mp_type_name(type(obj))}' object has no attribute '{name}'")


class Guards:
    """The per-board registry of user classes/modules and the guard functions over it."""

    def __init__(self, halted: Callable[[], bool],
                 caught: Callable[[BaseException | None], None] = lambda exc: None) -> None:
        self._caught = caught
        self.user_classes = IdentityRegistry()
        self.user_modules = IdentityRegistry()
        self.type_stand_in = TypeStandIn(self)
        self._halted = halted
        self._formatter = _SafeFormatter(self)

    # -- ownership ------------------------------------------------------------------------------
    def is_user_class(self, obj: Any) -> bool:
        return isinstance(obj, type) and obj in self.user_classes

    def is_user_object(self, obj: Any) -> bool:
        return self.is_user_class(obj) or type(obj) in self.user_classes \
            or (isinstance(obj, types.ModuleType) and obj in self.user_modules)

    def _private_ok(self, obj: Any, name: str) -> bool:
        """A single-underscore attribute: only where the user's own code defines it."""
        if is_guard_name(name):
            return False
        if isinstance(obj, types.ModuleType):
            return obj in self.user_modules
        if self.is_user_class(obj):
            mro = obj.__mro__
        elif type(obj) in self.user_classes:
            inst = getattr(obj, "__dict__", None)
            if isinstance(inst, dict) and name in inst:
                return True
            mro = type(obj).__mro__
        else:
            return False
        for klass in mro:
            if name in vars(klass):
                return klass in self.user_classes
        return True

    def check_read(self, obj: Any, name: Any) -> None:
        if not isinstance(name, str):
            raise TypeError("attribute name must be str")
        if name in FORBIDDEN_ATTRS or name.startswith(FORBIDDEN_PREFIXES):
            raise attr_error(obj, name, self.user_classes)
        if is_dunder(name):
            if name in SAFE_DUNDER_ANY:
                return
            if name in METHOD_NAMES and (self.is_user_object(obj) or isinstance(obj, super)):
                return
            raise attr_error(obj, name, self.user_classes)
        if name.startswith("_"):
            if not self._private_ok(obj, name):
                raise attr_error(obj, name, self.user_classes)
            return
        if isinstance(obj, BaseException) and type(obj) not in self.user_classes \
                and name not in EXC_ATTRS:
            raise attr_error(obj, name, self.user_classes)

    def check_write(self, obj: Any, name: Any) -> None:
        if not isinstance(name, str):
            raise TypeError("attribute name must be str")
        if is_dunder(name) or is_guard_name(name) or not self.is_user_object(obj):
            raise attr_error(obj, name, self.user_classes)

    # -- guards -----------------------------------------------------------------------------
    def getattr(self, obj: Any, name: Any, *default: Any) -> Any:
        self.check_read(obj, name)
        if name in ("format", "format_map") and (obj is str or isinstance(obj, str)):
            return self._format_fn(obj, name)
        try:
            value = getattr(obj, name)
        except AttributeError:
            if default:
                return default[0]
            raise attr_error(obj, name, self.user_classes) from None
        if name == "__class__":
            return self.shown_type(value)
        return value

    def shown_type(self, t: Any) -> Any:
        """A class as user code may hold it: ``type`` and host metaclasses become the stand-in."""
        return self.type_stand_in if _is_metaclass(t) else t

    def hasattr(self, obj: Any, name: Any) -> bool:
        try:
            self.getattr(obj, name)
        except AttributeError:
            return False
        return True

    def setattr(self, obj: Any, name: Any, value: Any) -> None:
        self.check_write(obj, name)
        setattr(obj, name, value)

    def delattr(self, obj: Any, name: Any) -> None:
        self.check_write(obj, name)
        delattr(obj, name)

    def write(self, obj: Any) -> "_Writer":
        return _Writer(self, obj)

    def _format_fn(self, obj: Any, name: str) -> Callable[..., str]:
        fmt = self._formatter
        if obj is str:
            if name == "format":
                return lambda s, *a, **k: fmt.vformat(s, a, k)
            return lambda s, m: fmt.vformat(s, (), m)
        if name == "format":
            return lambda *a, **k: fmt.vformat(obj, a, k)
        return lambda m: fmt.vformat(obj, (), m)

    def make_class(self, name: str, bases: tuple, ns: dict, **kw: Any) -> type:
        """``__metaclass__`` for every class statement (and 3-argument type())."""
        if kw:
            raise TypeError("keyword arguments not supported")
        for key in ns:
            if not isinstance(key, str):
                raise TypeError("attribute name must be str")
            if is_dunder(key) and key not in METHOD_NAMES and key not in _COMPILER_CLASS_KEYS:
                raise TypeError(f"can't define '{key}' on the simulated board")
        for base in bases:
            # a metaclass base would let user code make classes outside this function
            if not isinstance(base, type) or _is_metaclass(base):
                raise TypeError("type is not an acceptable base type")
        # type() itself picks a host metaclass of a base (an emulated class's), never a user one
        cls = type(name, bases, ns)
        self.user_classes.add(cls)
        return cls

    def type_builtin(self, *args: Any) -> Any:
        if len(args) == 1:
            if isinstance(args[0], TypeStandIn):
                return self.type_stand_in
            return self.shown_type(type(args[0]))
        if len(args) == 3 and isinstance(args[0], str) and isinstance(args[1], tuple) \
                and isinstance(args[2], dict):
            return self.make_class(args[0], args[1], dict(args[2]))
        raise TypeError("type() takes 1 or 3 arguments")

    def except_hook(self) -> None:
        exc = sys.exc_info()[1]
        if self._halted() or isinstance(exc, ProgramHalted):
            raise ProgramHalted()
        if exc is not None:
            self._caught(exc)
            translate(exc)


class _Writer:
    """What ``_write_(obj)`` returns: checks attribute stores, passes item stores through."""

    __slots__ = ("_g", "_o")

    def __init__(self, guards: Guards, obj: Any) -> None:
        object.__setattr__(self, "_g", guards)
        object.__setattr__(self, "_o", obj)

    def __setattr__(self, name: str, value: Any) -> None:
        self._g.setattr(self._o, name, value)

    def __delattr__(self, name: str) -> None:
        self._g.delattr(self._o, name)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._o[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._o[key]


class _SafeFormatter(string.Formatter):
    def __init__(self, guards: Guards) -> None:
        self._guards = guards

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        first, rest = formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            obj = self._guards.getattr(obj, key) if is_attr else obj[key]
        return obj, first


def mp_repr(value: Any, guards: Guards, _seen: frozenset = frozenset()) -> str:
    """repr() as the MicroPython REPL shows it for the values that differ from CPython.

    Functions: MicroPython 1.11 shows built-in ones as ``<function>``, bytecode ones as
    ``<function name at 0x...>``, bound methods as ``<bound_method>`` (the board's built-ins and
    module functions are host callables here: all ``<function>``, never a host name). Lists,
    tuples, dicts and sets are shown element by element through this function.
    """
    if isinstance(value, type):
        return f"<class '{value.__name__}'>"
    t = type(value)
    if t in _CONTAINER_TYPES:
        return _container_repr(value, guards, _seen)
    if t in _CALLABLE_TYPES:
        return _callable_repr(value, guards)
    if t in guards.user_classes and t.__repr__ is object.__repr__:
        return "<%s object at %x>" % (t.__name__, (id(value) >> 4) & 0xFFFFFFF)
    if isinstance(value, BaseException) and t.__repr__ is BaseException.__repr__:
        inner = repr(tuple(value.args))
        return f"{t.__name__}{inner}" if value.args else f"{t.__name__}()"
    return repr(value)


_CONTAINER_TYPES = (list, tuple, dict, set, frozenset)
_CALLABLE_TYPES = (types.FunctionType, types.MethodType, types.BuiltinFunctionType,
                   types.MethodWrapperType, types.MethodDescriptorType, types.WrapperDescriptorType,
                   types.ClassMethodDescriptorType)


def _callable_repr(value: Any, guards: Guards) -> str:
    if is_builtin_method(value, guards.user_classes):
        return "<bound_method>"
    if isinstance(value, types.MethodType):
        return "<function>"
    if isinstance(value, types.FunctionType) and is_user_function(value, guards):
        return "<function %s at 0x%x>" % (value.__name__, (id(value) >> 4) & 0xFFFFFFF)
    return "<function>"


def is_user_function(fn: types.FunctionType, guards: Guards) -> bool:
    """Compiled from user code: its globals hold this board's guards."""
    return fn.__globals__.get("_getattr_") == guards.getattr


def _container_repr(value: Any, guards: Guards, seen: frozenset) -> str:
    if id(value) in seen:
        return "[...]" if isinstance(value, list) else "{...}"
    seen = seen | {id(value)}
    if isinstance(value, dict):
        inner = ", ".join(f"{mp_repr(k, guards, seen)}: {mp_repr(v, guards, seen)}"
                          for k, v in list(value.items()))
        return "{" + inner + "}"
    items = ", ".join(mp_repr(x, guards, seen) for x in list(value))
    if isinstance(value, list):
        return f"[{items}]"
    if isinstance(value, tuple):
        return f"({items},)" if len(value) == 1 else f"({items})"
    if not value:
        return "set()" if isinstance(value, set) else "frozenset()"
    return "{" + items + "}" if isinstance(value, set) else "frozenset({" + items + "})"


def mp_type_label(value: Any, guards: Guards) -> str:
    """The type name help() shows for an object (``function``, ``bound_method``, ``type``...)."""
    if isinstance(value, (type, TypeStandIn)):
        return "type"
    if type(value) in _CALLABLE_TYPES:
        return "bound_method" if is_builtin_method(value, guards.user_classes) else "function"
    return mp_type_name(type(value))


def mp_str(value: Any, guards: Guards) -> str:
    if isinstance(value, type) or (type(value) in guards.user_classes
                                   and type(value).__str__ is object.__str__):
        return mp_repr(value, guards)
    if type(value) in _CALLABLE_TYPES or type(value) in _CONTAINER_TYPES:
        return mp_repr(value, guards)
    return str(value)


def public_copy(namespace: dict) -> dict:
    """globals()/locals() for user code: the user's names, not the guards."""
    return {k: v for k, v in namespace.items()
            if not is_guard_name(k) and k != "__builtins__" and not k.startswith("_tmp")}


class Sandbox:
    """One soft boot's restricted interpreter environment."""

    def __init__(self, guards: Guards, hooks: dict[str, Callable[..., Any]]) -> None:
        """``hooks``: print, open, input, help, import, repl_print (the board side of builtins)."""
        self.guards = guards
        self._hooks = hooks
        self.builtins = self._make_builtins()
        self._guard_map = self._make_guard_map()

    def _make_builtins(self) -> dict[str, Any]:
        import builtins as host
        g = self.guards
        b: dict[str, Any] = {name: getattr(host, name) for name in MP_BUILTINS + MP_EXCEPTIONS}
        b.update({
            "True": True, "False": False, "None": None, "NotImplemented": NotImplemented,
            "Ellipsis": Ellipsis,
            "__build_class__": host.__build_class__,
            "__import__": self._hooks["import"],
            "getattr": g.getattr, "hasattr": g.hasattr, "setattr": g.setattr,
            "delattr": g.delattr, "type": g.type_stand_in,
            "repr": self._repr,
            "print": self._hooks["print"], "open": self._hooks["open"],
            "input": self._hooks["input"], "help": self._hooks["help"],
            "exec": self._exec, "eval": self._eval,
            "globals": self._globals, "locals": self._locals,
        })
        return b

    def _repr(self, obj: Any) -> str:
        return mp_repr(obj, self.guards)

    def guard_names(self) -> dict[str, Any]:
        return dict(self._guard_map)

    def _make_guard_map(self) -> dict[str, Any]:
        g = self.guards
        return {
            "__builtins__": self.builtins,
            "__metaclass__": g.make_class,
            "_getattr_": g.getattr,
            "_write_": g.write,
            "_getitem_": operator.getitem,
            "_getiter_": iter,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_unpack_sequence_": guarded_unpack_sequence,
            "_inplacevar_": _inplacevar,
            "_apply_": _apply,
            "_except_hook_": g.except_hook,
            "_repl_print_": self._hooks["repl_print"],
            "_name_error_": _name_error,
        }

    def new_globals(self, name: str = "__main__", file: str | None = None) -> dict[str, Any]:
        ns: dict[str, Any] = {"__name__": name}
        if file is not None:
            ns["__file__"] = file
        ns.update(self._guard_map)
        return ns

    def new_module(self, name: str, file: str) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(self.new_globals(name, file))
        self.guards.user_modules.add(mod)
        return mod

    # -- builtins that need the caller's frame ---------------------------------------------------
    def _user_frame(self) -> types.FrameType:
        """The nearest calling frame of sandboxed code (never a host frame in between)."""
        marker = self._guard_map["_getattr_"]
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_globals.get("_getattr_") is marker:
                return frame
            frame = frame.f_back
        raise TypeError("no caller")

    def _globals(self) -> dict:
        return public_copy(self._user_frame().f_globals)

    def _locals(self) -> dict:
        frame = self._user_frame()
        if frame.f_locals is frame.f_globals:
            return public_copy(frame.f_globals)
        return {k: v for k, v in frame.f_locals.items() if not is_guard_name(k)}

    def _namespaces(self, globals_: Any, locals_: Any) -> tuple[dict, dict | None]:
        if globals_ is None:
            frame = self._user_frame()
            ns = frame.f_globals
            if locals_ is None and frame.f_locals is not frame.f_globals:
                locals_ = dict(frame.f_locals)   # a snapshot, as exec() in a function gets
        elif isinstance(globals_, dict):
            ns = globals_
        else:
            raise TypeError("globals must be a dict")
        ns.update(self._guard_map)        # always the real guards, whatever the dict held
        if locals_ is not None and not isinstance(locals_, dict):
            raise TypeError("locals must be a dict")
        return ns, locals_

    def _exec(self, source: Any, globals_: Any = None, locals_: Any = None) -> None:
        if not isinstance(source, (str, bytes, bytearray)):
            raise TypeError("exec() arg 1 must be a string")
        ns, loc = self._namespaces(globals_, locals_)
        code = compile_user(source, "<string>", "exec")
        exec(code, ns, loc if loc is not None else ns)

    def _eval(self, source: Any, globals_: Any = None, locals_: Any = None) -> Any:
        if not isinstance(source, (str, bytes, bytearray)):
            raise TypeError("eval() arg 1 must be a string")
        text = source if isinstance(source, str) else bytes(source).decode("utf-8", "replace")
        ns, loc = self._namespaces(globals_, locals_)
        scratch = dict(loc) if loc is not None else {}
        exec(_compile_eval(text), ns, scratch)
        return scratch["_eval_result_"]


def _compile_eval(text: str):
    import ast
    from k210sim.maixpy.mperrors import mp_syntax_error
    from k210sim.maixpy.policy import MpPolicy, SYNTAX, _Instrument
    try:
        expr = ast.parse(text.strip(), "<string>", "eval")
    except SyntaxError as exc:
        raise mp_syntax_error("SyntaxError", "invalid syntax", "<string>", exc.lineno or 1) from None
    module = ast.Module(body=[ast.Expr(expr.body)], type_ignores=[])
    policy = MpPolicy()
    module = policy.visit(module)
    if policy.mp_errors:
        line, kind, msg = min(policy.mp_errors)
        raise mp_syntax_error("SyntaxError", "invalid syntax" if kind == SYNTAX else msg,
                              "<string>", line)
    stmt = module.body[0]
    assign = ast.Assign(targets=[ast.Name("_eval_result_", ast.Store())], value=stmt.value)
    module.body = [assign]
    module = _Instrument(echo=False).visit(module)
    ast.fix_missing_locations(module)
    return compile(module, "<string>", "exec", dont_inherit=True)


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    return _IOPS[op](x, y)


def _apply(f: Callable[..., Any], *a: Any, **kw: Any) -> Any:
    return f(*a, **kw)


def _name_error(name: str) -> None:
    raise NameError(f"name '{name}' isn't defined")
