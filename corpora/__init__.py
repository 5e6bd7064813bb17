"""corpora: the conversation types (Message, Task, Episode), the WildChat and WildBench loaders,
record validation, filters, user-disjoint splits, Task files, and the bundled sample data.
Depends on nothing else in wildsim. `wildsim data prepare` (corpora/prepare.py) turns a WildChat
source into filtered train/validation/test files; docs/data.md describes the workflow."""

from corpora.records import DataError, SchemaError
from corpora.tasks import conversation_to_task, read_tasks, write_tasks
from corpora.types import (END_LENGTH_CAP, END_REASONS, END_TURN_CAP, END_USER, Episode,
                           Message, Task, TokenView)
from corpora.wildbench import WildBenchTask, load_wildbench
from corpora.wildchat import WildChatConversation, iter_wildchat, to_messages

__all__ = ["Message", "Task", "TokenView", "Episode",
           "END_USER", "END_TURN_CAP", "END_LENGTH_CAP", "END_REASONS",
           "DataError", "SchemaError", "WildChatConversation", "iter_wildchat", "to_messages",
           "WildBenchTask", "load_wildbench", "conversation_to_task", "read_tasks", "write_tasks"]
