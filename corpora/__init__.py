"""corpora: the conversation types (Message, Task, Episode), the WildChat and WildBench loaders,
record validation, user-disjoint splits, and the bundled sample data. Depends on nothing else
in wildsim."""

from corpora.types import (END_LENGTH_CAP, END_REASONS, END_TURN_CAP, END_USER, Episode,
                           Message, Task, TokenView)

__all__ = ["Message", "Task", "TokenView", "Episode",
           "END_USER", "END_TURN_CAP", "END_LENGTH_CAP", "END_REASONS"]
