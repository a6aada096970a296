"""``var`` is a list of names: a bare string is rejected (as Pixyz documents it)."""
from pixyz_pyro.dist import Normal

p = Normal(var="x", loc=0.0, scale=1.0)  # rejected: "var" to "Normal" has incompatible type "str"
