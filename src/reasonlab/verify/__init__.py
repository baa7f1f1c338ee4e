"""Answer extraction and equivalence: never raise, bounded time, None when they cannot judge."""

from reasonlab.verify.equivalence import is_equivalent, normalize, to_number
from reasonlab.verify.extract import count_numbers, extract_answer, last_boxed

__all__ = ["count_numbers", "extract_answer", "is_equivalent", "last_boxed", "normalize", "to_number"]
