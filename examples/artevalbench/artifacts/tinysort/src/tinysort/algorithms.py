"""Three sorts that count their comparisons (the paper's metric: it does not depend on the machine)."""

from __future__ import annotations


class Counter:
    def __init__(self) -> None:
        self.comparisons = 0

    def less(self, a: int, b: int) -> bool:
        self.comparisons += 1
        return a < b


def insertion_sort(values: list[int], counter: Counter) -> list[int]:
    out = list(values)
    for i in range(1, len(out)):
        j = i
        while j > 0 and counter.less(out[j], out[j - 1]):
            out[j], out[j - 1] = out[j - 1], out[j]
            j -= 1
    return out


def binary_insertion_sort(values: list[int], counter: Counter) -> list[int]:
    out: list[int] = []
    for value in values:
        lo, hi = 0, len(out)
        while lo < hi:
            mid = (lo + hi) // 2
            if counter.less(value, out[mid]):
                hi = mid
            else:
                lo = mid + 1
        out.insert(lo, value)
    return out


def merge_sort(values: list[int], counter: Counter) -> list[int]:
    if len(values) <= 1:
        return list(values)
    mid = len(values) // 2
    left, right = merge_sort(values[:mid], counter), merge_sort(values[mid:], counter)
    out, i, j = [], 0, 0
    while i < len(left) and j < len(right):
        if counter.less(right[j], left[i]):
            out.append(right[j])
            j += 1
        else:
            out.append(left[i])
            i += 1
    return out + left[i:] + right[j:]


ALGORITHMS = {
    "insertion": insertion_sort,
    "binary-insertion": binary_insertion_sort,
    "merge": merge_sort,
}
