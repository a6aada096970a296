"""A transform whose number of feature dims is set per instance (1 for vectors, 3 for
images), with matching ``domain`` and ``codomain``."""
from pyro.distributions import constraints
from pyro.distributions.transforms import Transform


class EventDimTransform(Transform):
    """Base of our transforms that work on vectors or images alike."""

    _event_dim = 1

    @property
    def event_dim(self) -> int:
        """Number of feature dims (1 for vectors, 3 for images)."""
        return self._event_dim

    @event_dim.setter
    def event_dim(self, value: int) -> None:
        self._event_dim = value

    # torch declares domain/codomain as class attributes; here they follow event_dim
    @property
    def domain(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.independent(constraints.real, self.event_dim)

    @property
    def codomain(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.independent(constraints.real, self.event_dim)
