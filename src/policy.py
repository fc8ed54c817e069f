# pyexec's policy over RestrictedPython: the transformer subclass, the guards
# and the builtins a snippet sees.  Embedded in the pyexec binary and run once
# per worker, before the OS sandbox closes; it holds no secrets.
import gc
import sys

# Importing RestrictedPython (typing, enum, ast, ...) allocates many
# container objects; a cyclic collection in the middle of that finds no
# garbage.  Collection is off while the policy loads and comes back, with
# everything loaded so far frozen out of its way, before the snippet runs.
gc.disable()

import operator  # noqa: E402

import _pyexec
from RestrictedPython.compile import compile_restricted_exec, syntax_error_template
from RestrictedPython.Guards import (full_write_guard, guarded_iter_unpack_sequence,
                                     guarded_unpack_sequence, safer_getattr_raise)
from RestrictedPython.transformer import RestrictingNodeTransformer

# Attribute names rejected at compile time on top of RestrictedPython's own
# checks: the str.format / string.Formatter family (CVE-2023-41039 and the
# 2026 Formatter traversal fixed in 8.4) can walk attributes of arguments.
FORBIDDEN_ATTRIBUTES = frozenset({
    'format', 'format_map', 'vformat', 'get_field', 'get_value', 'Formatter',
    'mro', 'gi_frame', 'gi_code', 'gi_yieldframe', 'ag_frame', 'ag_code',
    'cr_frame', 'cr_code', 'f_back', 'f_globals', 'f_locals', 'f_builtins',
    'f_code', 'tb_frame', 'tb_next', 'co_code', 'func_globals',
})


class Policy(RestrictingNodeTransformer):
    """RestrictedPython's transformer, narrowed further."""

    def visit_TryStar(self, node):
        # CVE-2025-22153: except* could reach unguarded exception groups.
        self.error(node, 'except* (exception groups) is not allowed.')

    def visit_ClassDef(self, node):
        # Classes bring metaclasses, descriptors and dunder protocols: not
        # needed to compute over JSON, and the home of most escapes.
        self.error(node, 'class definitions are not allowed.')

    # 2026 advisory (fixed in 8.3): positional-only parameters could shadow
    # _getattr_/_write_.  Refuse them outright, reported on the def or
    # lambda (an ast.arguments node has no line of its own).
    def _no_posonly(self, node):
        if node.args.posonlyargs:
            self.error(node, 'positional-only parameters are not allowed.')

    def visit_FunctionDef(self, node):
        self._no_posonly(node)
        return super().visit_FunctionDef(node)

    def visit_AsyncFunctionDef(self, node):
        self._no_posonly(node)
        return super().visit_AsyncFunctionDef(node)

    def visit_Lambda(self, node):
        self._no_posonly(node)
        return super().visit_Lambda(node)

    def visit_Attribute(self, node):
        if node.attr in FORBIDDEN_ATTRIBUTES:
            self.error(node, f'"{node.attr}" is a forbidden attribute name.')
        return super().visit_Attribute(node)

    def visit_Name(self, node):
        if node.id in ('__builtins__', '__metaclass__', '__build_class__'):
            self.error(node, f'"{node.id}" is a forbidden name.')
        return super().visit_Name(node)

    def visit_Global(self, node):
        self.error(node, 'global statements are not allowed.')

    def visit_Nonlocal(self, node):
        self.error(node, 'nonlocal statements are not allowed.')

    # async def, await, async for and async with are refused upstream; an
    # async comprehension would still hand the snippet a live
    # async_generator (or fail later, in CPython's compiler).
    def _no_async(self, node):
        if any(gen.is_async for gen in node.generators):
            self.error(node, 'async comprehensions and generator expressions are not allowed.')

    def visit_ListComp(self, node):
        self._no_async(node)
        return super().visit_ListComp(node)

    def visit_SetComp(self, node):
        self._no_async(node)
        return super().visit_SetComp(node)

    def visit_DictComp(self, node):
        self._no_async(node)
        return super().visit_DictComp(node)

    def visit_GeneratorExp(self, node):
        self._no_async(node)
        return super().visit_GeneratorExp(node)


class builtin_function_or_method:
    """What the snippet sees as `print` and `hash`: a callable with the plain
    name and repr of a built-in function, rather than a bound method of our
    classes with a heap address.  Its attributes start with "_": the guards
    keep the snippet out of them."""

    __slots__ = ('_name', '_fn')

    def __init__(self, name, fn):
        self._name = name
        self._fn = fn

    def __call__(self, *args, **kwargs):
        return self._fn(*args, **kwargs)

    def __repr__(self):
        return f'<built-in function {self._name}>'


class Printer:
    """print() target: text goes straight to the supervisor's shared buffer
    (kept even if the worker is killed), and stays readable as `printed`."""

    def __init__(self, _getattr_=None):
        self.txt = []
        self._getattr_ = _getattr_
        # The snippet's print (RestrictedPython turns it into _print._call_print).
        self._call_print = builtin_function_or_method('print', self._print)

    def write(self, text):
        if type(text) is not str:
            raise TypeError('write() argument must be str')
        _pyexec.write(text)
        self.txt.append(text)

    def flush(self):
        """print(..., flush=True): output is unbuffered already."""

    def __call__(self):
        return ''.join(self.txt)

    def _print(self, *objects, **kwargs):
        if kwargs.get('file', None) is None:
            kwargs['file'] = self
        else:
            self._getattr_(kwargs['file'], 'write')
        print(*objects, **kwargs)


_INPLACE = {
    '+=': operator.iadd, '-=': operator.isub, '*=': operator.imul,
    '/=': operator.itruediv, '//=': operator.ifloordiv, '%=': operator.imod,
    '**=': operator.ipow, '<<=': operator.ilshift, '>>=': operator.irshift,
    '&=': operator.iand, '|=': operator.ior, '^=': operator.ixor,
    '@=': operator.imatmul,
}


def _inplacevar_(op, x, y):
    return _INPLACE[op](x, y)


def _apply_(func, *args, **kwargs):
    return func(*args, **kwargs)


def _refuse_import(name, globals=None, locals=None, fromlist=(), level=0):
    """__import__ of the snippet: every import fails, saying so."""
    module = '.' * level + name
    raise ImportError(f'import of {module!r} is not allowed', name=module)


# Types whose hash is computed from the value; any other hashable object's
# hash is derived from its address.
_VALUE_HASHED = frozenset({type(None), bool, int, float, complex, str, bytes, range})


def _hash_reveals_address(obj):
    t = type(obj)
    if t is tuple or t is frozenset:
        return any(_hash_reveals_address(x) for x in obj)
    return t not in _VALUE_HASHED and t.__hash__ is not None


def _hash(obj):
    """hash() of values only: that of a function, type or exception is its
    memory address in disguise."""
    if _hash_reveals_address(obj):
        raise TypeError(f"hash() of a '{type(obj).__name__}' object is not available "
                        '(it is derived from a memory address)')
    return hash(obj)


def _make_builtins():
    import builtins
    names = (
        # The seed's list.
        'abs bool dict float int len list max min print range str sum tuple '
        'round pow map filter enumerate zip '
        # Harmless ones users reach for.
        'sorted reversed any all isinstance set frozenset divmod chr ord '
        'hex oct bin repr callable slice next iter '
        # Exceptions a snippet may raise or catch.
        'Exception ArithmeticError AssertionError AttributeError IndexError '
        'KeyError LookupError NameError NotImplementedError OverflowError '
        'RecursionError RuntimeError StopIteration TypeError ValueError '
        'ZeroDivisionError UnicodeError ImportError ModuleNotFoundError'
    ).split()
    table = {name: getattr(builtins, name) for name in names}
    table.update({'None': None, 'True': True, 'False': False,
                  'hash': builtin_function_or_method('hash', _hash),
                  # Not a name a snippet can write (it starts with "_"): the
                  # import statement calls it.
                  '__import__': _refuse_import})
    return table


BUILTINS = _make_builtins()
GUARDS = {
    # The raising variant: a missing attribute is an AttributeError, as in
    # Python, rather than RestrictedPython's default of None.
    '_getattr_': safer_getattr_raise,
    '_getitem_': operator.getitem,
    '_getiter_': iter,
    '_iter_unpack_sequence_': guarded_iter_unpack_sequence,
    '_unpack_sequence_': guarded_unpack_sequence,
    '_write_': full_write_guard,
    '_inplacevar_': _inplacevar_,
    '_apply_': _apply_,
    '_print_': Printer,
}
FILENAME = '<code>'
# Integers of any size in `data` arrive exactly: the C conversion runs under
# no digit limit.  The snippet itself runs under CPython's default (see run),
# and a result never holds an integer JSON clients could not read back.
sys.set_int_max_str_digits(0)


class Rejected(Exception):
    """Compilation failed: syntax error or policy rejection."""

    def __init__(self, message, line):
        super().__init__(message)
        self.line = line


def _first_line(errors):
    text = errors[0]
    if text.startswith('Line '):
        head = text[5:].split(':', 1)[0]
        if head.isdigit():
            return int(head)
    return 0


def _compiler_error(exc, source):
    """RestrictedPython's wording for a SyntaxError of CPython's compiler,
    which judges what the parser let through ('return' outside a function,
    'break' outside a loop, duplicate argument names, ...)."""
    line = exc.lineno or 0
    lines = source.splitlines()
    text = exc.text or (lines[line - 1] if 0 < line <= len(lines) else None)
    message = syntax_error_template.format(lineno=line, type='SyntaxError', msg=exc.msg,
                                           statement=text.strip() if text else None)
    return Rejected(message, line)


def compile_code(source):
    """Restricted bytecode for source, or Rejected with the reason(s)."""
    try:
        result = compile_restricted_exec(source, FILENAME, policy=Policy)
    except SyntaxError as exc:
        raise _compiler_error(exc, source) from None
    if result.errors or result.code is None:
        errors = list(result.errors) or ['could not compile']
        raise Rejected('; '.join(errors), _first_line(errors))
    return result.code


def run(code, data):
    """Execute compiled code with `data`; the value of `result` (or None)."""
    gc.freeze()
    gc.enable()
    env = dict(GUARDS)
    env['__builtins__'] = BUILTINS
    env['__name__'] = 'snippet'
    env['data'] = data
    sys.set_int_max_str_digits(sys.int_info.default_max_str_digits)
    exec(code, env)
    return env.get('result')


RESERVED_TYPES = frozenset({'TimeoutError', 'MemoryError', 'OutputLimitExceeded',
                            'ResultTooLarge', 'InternalError', 'SyntaxError'})


def describe(exc):
    """(type, message, line) of an exception raised by the snippet."""
    cls = type(exc)
    name = cls.__name__ if cls.__module__ == 'builtins' else 'UserError'
    if isinstance(exc, Rejected):
        name = 'SyntaxError'
    elif name in RESERVED_TYPES and name != 'MemoryError':
        name = 'UserError'
    line = getattr(exc, 'line', 0) if isinstance(exc, Rejected) else 0
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    try:
        message = str(exc)
    except BaseException:
        message = '<unprintable exception>'
    # Lone surrogates cannot travel as UTF-8: escape them, keep the rest.
    # The report holds 1023 bytes: C cuts there, on a character boundary,
    # and marks the cut; more than 1023 characters never fit anyway.
    message = message[:1024].encode('utf-8', 'backslashreplace').decode('utf-8')
    return name, message, line or 0
