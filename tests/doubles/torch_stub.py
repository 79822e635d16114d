"""Stand-in torch for importing vLLM's CLI and protocol without a GPU build of torch."""

import abc
import importlib
import importlib.abc
import importlib.machinery
import sys
import types

ROOTS = ("torch", "triton", "xformers", "flashinfer", "xgrammar")


class _Meta(abc.ABCMeta):  # ABCMeta: vLLM mixes torch.nn.Module with ABCs
    def __getattr__(cls, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _make(f"{cls.__qualname__}.{name}")

    def __call__(cls, *args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs and isinstance(args[0], types.FunctionType):
            return args[0]  # used as a decorator
        return super().__call__()

    def __getitem__(cls, item):
        return cls

    def __or__(cls, other):
        return cls

    __ror__ = __or__

    def __bool__(cls):
        return True

    def __iter__(cls):
        return iter(())


class _Stub(metaclass=_Meta):
    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _make(name)()

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return _Stub()

    def __bool__(self):
        return False

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __getitem__(self, item):
        return _Stub()

    def __int__(self):
        return 0

    def __index__(self):
        return 0

    def __float__(self):
        return 0.0

    def __str__(self):
        return ""

    def __add__(self, other):
        return other

    __radd__ = __mul__ = __rmul__ = __sub__ = __rsub__ = __add__


def _make(name):
    return _Meta(name.rsplit(".", 1)[-1], (_Stub,), {"__qualname__": name, "__module__": "torch"})


class _Module(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        full = f"{self.__name__}.{name}"
        if full in sys.modules:
            return sys.modules[full]
        value = _make(full)
        setattr(self, name, value)
        return value


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in ROOTS:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _Module(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


class dtype:
    def __init__(self, name, itemsize, floating):
        self.name, self.itemsize, self.is_floating_point = name, itemsize, floating
        self.is_signed = floating or not name.startswith(("uint", "bool"))
        self.is_complex = name.startswith("complex")

    def __repr__(self):
        return f"torch.{self.name}"

    def to_real(self):
        return self


DTYPES = {
    "float16": 2,
    "bfloat16": 2,
    "float32": 4,
    "float64": 8,
    "complex64": 8,
    "complex128": 16,
    "uint8": 1,
    "uint16": 2,
    "uint32": 4,
    "uint64": 8,
    "int8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "bool": 1,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "float8_e4m3fnuz": 1,
    "float8_e5m2fnuz": 1,
    "float8_e8m0fnu": 1,
    "float4_e2m1fn_x2": 1,
    "quint8": 1,
    "qint8": 1,
    "qint32": 4,
}
ALIASES = {
    "half": "float16",
    "float": "float32",
    "double": "float64",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "cfloat": "complex64",
}


class Library:
    """torch.library.Library: keeps its namespace; definitions go nowhere."""

    def __init__(self, ns, kind="FRAGMENT", dispatch_key=""):
        self.ns, self.kind, self.dispatch_key = ns, kind, dispatch_key

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def infer_schema(fn, *args, **kwargs):
    """A schema string shaped like torch.library.infer_schema's: one Tensor per parameter and output."""
    import inspect

    signature = inspect.signature(fn)
    params = ", ".join(f"Tensor {name}" for name in signature.parameters)
    returns = signature.return_annotation
    text = returns if isinstance(returns, str) else repr(returns)
    outputs = max(1, text.count("Tensor")) if "tuple" in text.lower() else 1
    shown = "Tensor" if outputs == 1 else "(" + ", ".join(["Tensor"] * outputs) + ")"
    return f"({params}) -> {shown}"


def _numpy_info(what, kind):
    """torch.iinfo / torch.finfo through numpy's (request models bound seeds by torch.iinfo(long));
    numpy has no bfloat16 or float8 types: those get float32's and float16's limits."""
    import numpy

    name = getattr(kind, "name", "float32")
    if not hasattr(numpy, name):
        name = {"bool": "bool_", "bfloat16": "float32"}.get(name, "float16" if what == "finfo" else "int8")
    return getattr(numpy, what)(getattr(numpy, name))


def install(torch_version="2.8.0"):
    sys.meta_path.insert(0, _Finder())
    import torch

    for name in ("version", "cuda", "library"):
        importlib.import_module(f"torch.{name}")

    torch.dtype = dtype
    for name, size in DTYPES.items():
        setattr(torch, name, dtype(name, size, name.startswith(("float", "bfloat", "complex"))))
    for alias, name in ALIASES.items():
        setattr(torch, alias, getattr(torch, name))
    torch.__version__ = torch_version
    torch.version.__version__ = torch_version
    torch.version.cuda = None
    torch.version.hip = None
    torch.version.git_version = "stub"
    torch.cuda.is_available = lambda: False
    torch.cuda.device_count = lambda: 0
    torch.library.infer_schema = infer_schema
    torch.iinfo = lambda kind: _numpy_info("iinfo", kind)
    torch.finfo = lambda kind=None: _numpy_info("finfo", kind or torch.float32)
    torch.library.Library = Library
