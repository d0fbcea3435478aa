"""Compile user code for the simulated board: RestrictedPython with a MicroPython-shaped policy.

``compile_user(source, filename, mode)`` parses, checks and rewrites the code, then compiles it:
- RestrictedPython (``MpPolicy``, a RestrictingNodeTransformer subclass) routes every attribute
  read through ``_getattr_``, attribute/item writes through ``_write_``, iteration through
  ``_getiter_``, class statements through ``__metaclass__``; the runtime guards live in
  k210sim.maixpy.sandbox. Compared with stock RestrictedPython the policy lets ordinary
  MicroPython programs through: ``print`` is a plain builtin, ``nonlocal``, ``exec``/``eval``
  (sandboxed versions), ``from m import *``, single-underscore names and attributes (checked at
  run time), augmented assignment to attributes and subscripts, dunder *method definitions* in
  classes from a fixed list (``__init__``, ``__repr__``, ``__enter__``, ...). Dunder attribute
  names are not rejected at compile time: ``_getattr_`` refuses the unsafe ones at run time with
  the AttributeError MicroPython would raise (it has no ``__subclasses__``, ``__globals__``...),
  and loads of dunder names other than ``__name__``/``__file__``/``__import__`` raise NameError.
  Names the guards use (``_getattr_``, ``_tmp0``, ...) are reserved.
- MicroPython 1.11 has no f-strings, no ``:=``, no ``match`` and (in MaixPy) no async/await:
  they are ``SyntaxError: invalid syntax``, as the board's parser reports them.
- Every ``except`` handler starts with ``_except_hook_()`` (turns the caught exception's text
  into MicroPython's words; re-raises a board halt). In REPL ("single") mode each expression
  statement at module level prints its repr through ``_repl_print_``.
A refused construct raises ``SyntaxError`` with the board's layout (File/line, no function name).
"""
from __future__ import annotations

import ast
import re

from RestrictedPython.transformer import RestrictingNodeTransformer, copy_locations

from k210sim.maixpy.mperrors import mp_syntax_error

# Dunder attributes any object may expose (pure data-model hooks and names).
SAFE_DUNDER_ANY = frozenset("""
__name__ __class__ __str__ __repr__ __len__ __iter__ __next__ __contains__ __getitem__
__setitem__ __delitem__ __enter__ __exit__ __call__ __hash__ __bool__ __eq__ __ne__ __lt__
__le__ __gt__ __ge__ __add__ __sub__ __mul__ __truediv__ __floordiv__ __mod__ __pow__ __neg__
__pos__ __abs__ __invert__ __and__ __or__ __xor__ __lshift__ __rshift__ __radd__ __rsub__
__rmul__ __iadd__ __isub__ __imul__ __index__ __int__ __float__ __reversed__
""".split())
# Dunder methods user classes may define (and read back on user objects / super()).
METHOD_NAMES = SAFE_DUNDER_ANY | frozenset("""
__init__ __new__ __getattr__ __get__ __set__ __delete__ __round__ __divmod__ __rdivmod__
__rtruediv__ __rfloordiv__ __rmod__ __rpow__ __rand__ __ror__ __rxor__ __rlshift__ __rrshift__
__itruediv__ __ifloordiv__ __imod__ __ipow__ __iand__ __ior__ __ixor__ __ilshift__ __irshift__
__matmul__ __rmatmul__ __imatmul__
""".split())
# Dunder names user code may load (everything else: NameError at run time).
LOADABLE_DUNDER_NAMES = frozenset({"__name__", "__file__", "__import__"})
_GUARD_NAME = re.compile(r"^_[A-Za-z0-9]\w*_$|^_tmp\d+$|^_print$|^__metaclass__$")

SYNTAX = "syntax"      # reported as the board's parser would: "invalid syntax"


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def is_guard_name(name: str) -> bool:
    return bool(_GUARD_NAME.match(name))


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(name, ast.Load()), args=list(args), keywords=[])


class MpPolicy(RestrictingNodeTransformer):
    def __init__(self, errors=None, warnings=None, used_names=None) -> None:
        super().__init__(errors, warnings, used_names)
        self.mp_errors: list[tuple[int, str, str]] = []   # (line, kind, message)
        self._classes: list[str] = []
        self._in_class_body = False

    # -- error collection ---------------------------------------------------------------------
    def error(self, node: ast.AST, info: str, kind: str = "sandbox") -> None:  # type: ignore[override]
        self.mp_errors.append((getattr(node, "lineno", 1) or 1, kind, info))
        self.errors.append(info)

    def syntax(self, node: ast.AST) -> None:
        self.error(node, "invalid syntax", SYNTAX)

    # -- names --------------------------------------------------------------------------------
    def check_name(self, node, name, allow_magic_methods: bool = False) -> None:  # type: ignore[override]
        if name is None:
            return
        if is_guard_name(name):
            self.error(node, f"name '{name}' is reserved on the simulated board")
        elif is_dunder(name) and not (allow_magic_methods and name in METHOD_NAMES) \
                and name not in LOADABLE_DUNDER_NAMES:
            self.error(node, f"name '{name}' can't be assigned on the simulated board")

    def check_import_names(self, node):  # type: ignore[override]
        for alias in node.names:
            if alias.name != "*":
                self.check_name(node, alias.name.split(".")[0])
            if alias.asname:
                self.check_name(node, alias.asname)
        return self.node_contents_visit(node)

    def visit_Name(self, node: ast.Name):
        if isinstance(node.ctx, ast.Load):
            if is_dunder(node.id) and node.id not in LOADABLE_DUNDER_NAMES:
                new = _call("_name_error_", ast.Constant(node.id))
                copy_locations(new, node)
                return new
            if is_guard_name(node.id):
                self.check_name(node, node.id)
            return node
        self.check_name(node, node.id)
        return node

    # -- attributes ---------------------------------------------------------------------------
    def _mangle(self, attr: str) -> str:
        if self._classes and attr.startswith("__") and not attr.endswith("__"):
            owner = self._classes[-1].lstrip("_")
            if owner:
                return f"_{owner}{attr}"
        return attr

    def visit_Attribute(self, node: ast.Attribute):
        attr = self._mangle(node.attr)
        if is_guard_name(attr):
            self.error(node, f"attribute '{attr}' is reserved on the simulated board")
        node = self.node_contents_visit(node)
        node.attr = attr
        if isinstance(node.ctx, ast.Load):
            new = _call("_getattr_", node.value, ast.Constant(attr))
            copy_locations(new, node)
            return new
        wrapped = _call("_write_", node.value)
        copy_locations(wrapped, node.value)
        node.value = wrapped
        return node

    # -- statements ---------------------------------------------------------------------------
    def visit_AugAssign(self, node: ast.AugAssign):
        target = node.target
        if isinstance(target, ast.Name):
            return super().visit_AugAssign(node)
        op = {ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/=", ast.Mod: "%=",
              ast.Pow: "**=", ast.LShift: "<<=", ast.RShift: ">>=", ast.BitOr: "|=",
              ast.BitXor: "^=", ast.BitAnd: "&=", ast.FloorDiv: "//=", ast.MatMult: "@="}[type(node.op)]
        value = self.visit(node.value)
        obj_tmp = self.gen_tmp_name()
        stmts: list[ast.stmt] = []
        if isinstance(target, ast.Attribute):
            attr = self._mangle(target.attr)
            if is_guard_name(attr):
                self.error(node, f"attribute '{attr}' is reserved on the simulated board")
            stmts.append(ast.Assign([ast.Name(obj_tmp, ast.Store())], self.visit(target.value)))
            current = _call("_getattr_", ast.Name(obj_tmp, ast.Load()), ast.Constant(attr))
            store: ast.expr = ast.Attribute(_call("_write_", ast.Name(obj_tmp, ast.Load())), attr,
                                            ast.Store())
        else:
            assert isinstance(target, ast.Subscript)
            key_tmp = self.gen_tmp_name()
            stmts.append(ast.Assign([ast.Name(obj_tmp, ast.Store())], self.visit(target.value)))
            key = target.slice
            if isinstance(key, ast.Slice):
                key = _call("slice", *(self.visit(p) if p is not None else ast.Constant(None)
                                       for p in (key.lower, key.upper, key.step)))
            else:
                key = self.visit(key)
            stmts.append(ast.Assign([ast.Name(key_tmp, ast.Store())], key))
            current = _call("_getitem_", ast.Name(obj_tmp, ast.Load()), ast.Name(key_tmp, ast.Load()))
            store = ast.Subscript(_call("_write_", ast.Name(obj_tmp, ast.Load())),
                                  ast.Name(key_tmp, ast.Load()), ast.Store())
        stmts.append(ast.Assign([store], _call("_inplacevar_", ast.Constant(op), current, value)))
        for s in stmts:
            copy_locations(s, node)
        return stmts

    def visit_Call(self, node: ast.Call):
        needs_wrap = any(isinstance(a, ast.Starred) for a in node.args) or \
            any(k.arg is None for k in node.keywords)
        node = self.node_contents_visit(node)
        if not needs_wrap:
            return node
        node.args.insert(0, node.func)
        node.func = ast.Name("_apply_", ast.Load())
        copy_locations(node.func, node.args[0])
        return node

    def visit_Nonlocal(self, node: ast.Nonlocal):
        for name in node.names:
            self.check_name(node, name)
        return node

    def visit_Global(self, node: ast.Global):
        for name in node.names:
            self.check_name(node, name)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef):
        self.check_name(node, node.name, allow_magic_methods=self._in_class_body)
        self.check_function_argument_names(node)
        saved, self._in_class_body = self._in_class_body, False
        try:
            return self.node_contents_visit(node)
        finally:
            self._in_class_body = saved

    def visit_ClassDef(self, node: ast.ClassDef):
        self._classes.append(node.name)
        saved, self._in_class_body = self._in_class_body, True
        try:
            return super().visit_ClassDef(node)
        finally:
            self._in_class_body = saved
            self._classes.pop()

    # -- what MicroPython 1.11 (MaixPy build) cannot parse -----------------------------------
    def visit_JoinedStr(self, node):
        self.syntax(node)
        return node

    def visit_NamedExpr(self, node):
        self.syntax(node)
        return node

    def visit_Match(self, node):
        self.syntax(node)
        return node

    def visit_AsyncFunctionDef(self, node):
        self.syntax(node)
        return node

    visit_AsyncFor = visit_AsyncWith = visit_Await = visit_AsyncFunctionDef


class _Instrument(ast.NodeTransformer):
    """After the policy: except-handler hooks, and REPL echo of expression statements."""

    def __init__(self, echo: bool) -> None:
        self.echo = echo
        self._depth = 0   # inside a def/class/lambda: no echo

    def visit_ExceptHandler(self, node: ast.ExceptHandler):
        self.generic_visit(node)
        hook = ast.Expr(_call("_except_hook_"))
        copy_locations(hook, node.body[0] if node.body else node)
        node.body.insert(0, hook)
        return node

    def _scoped(self, node):
        self._depth += 1
        try:
            self.generic_visit(node)
        finally:
            self._depth -= 1
        return node

    visit_FunctionDef = visit_ClassDef = visit_Lambda = _scoped

    def visit_Expr(self, node: ast.Expr):
        self.generic_visit(node)
        if self.echo and self._depth == 0:
            call = _call("_repl_print_", node.value)
            copy_locations(call, node.value)
            node.value = call
        return node


def _parse_error(exc: SyntaxError, filename: str) -> SyntaxError:
    msg = exc.msg or ""
    line = exc.lineno or 1
    if isinstance(exc, IndentationError) and "unindent does not match" in msg:
        return mp_syntax_error("IndentationError", "unindent does not match any outer indentation level",
                               filename, line)
    if isinstance(exc, IndentationError) and "unexpected indent" in msg:
        return mp_syntax_error("IndentationError", "unexpected indent", filename, line)
    return mp_syntax_error("SyntaxError", "invalid syntax", filename, line)


def compile_user(source: str | bytes, filename: str = "<stdin>", mode: str = "exec"):
    """Code object for sandboxed execution; raises the board's SyntaxError."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = bytes(source).decode("utf-8", "replace")
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    try:
        tree = ast.parse(source, filename, "exec")
    except SyntaxError as exc:
        raise _parse_error(exc, filename) from None
    except (ValueError, RecursionError):
        raise mp_syntax_error("SyntaxError", "invalid syntax", filename, 1) from None
    policy = MpPolicy()
    tree = policy.visit(tree)
    if policy.mp_errors:
        line, kind, msg = min(policy.mp_errors)
        raise mp_syntax_error("SyntaxError", "invalid syntax" if kind == SYNTAX else msg,
                              filename, line)
    tree = _Instrument(echo=(mode == "single")).visit(tree)
    ast.fix_missing_locations(tree)
    try:
        return compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise mp_syntax_error("SyntaxError", exc.msg or "invalid syntax", filename,
                              exc.lineno or 1) from None
