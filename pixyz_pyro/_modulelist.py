"""``ModuleListOf[T]``: an ``nn.ModuleList`` whose items the type checker knows are ``T``.

At run time ``ModuleListOf[T]`` *is* ``nn.ModuleList`` (same class, same repr, same
state-dict keys); only the checker sees the item type, so ``for d in self.p`` gives a
``Distribution`` rather than torch's ``Module``.

>>> from torch import nn
>>> ModuleListOf[nn.Linear]([nn.Linear(1, 1)]).__class__ is nn.ModuleList
True
"""
from typing import TYPE_CHECKING, Generic, Iterable, Iterator, Optional, TypeVar, Union, overload

from torch import nn

M = TypeVar("M", bound=nn.Module)

if TYPE_CHECKING:
    class ModuleListOf(nn.ModuleList, Generic[M]):
        """What the checker sees: a ModuleList of ``M``."""

        def __init__(self, modules: Optional[Iterable[M]] = None) -> None: ...

        def __iter__(self) -> Iterator[M]: ...

        @overload
        def __getitem__(self, idx: slice) -> "ModuleListOf[M]": ...

        @overload
        def __getitem__(self, idx: int) -> M: ...

        def __getitem__(self, idx: Union[int, slice]) -> Union[M, "ModuleListOf[M]"]: ...
else:
    class _ModuleListOf:
        """``ModuleListOf[T]`` is ``nn.ModuleList`` itself at run time."""

        def __getitem__(self, item: object) -> type:
            return nn.ModuleList

        def __repr__(self) -> str:
            return "ModuleListOf"

    ModuleListOf = _ModuleListOf()
