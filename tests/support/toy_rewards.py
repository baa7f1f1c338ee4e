"""A reward with variance on random text, so tiny random models get a gradient in tests."""


def vowels(samples, **_):
    return [sum(c in "aeiou" for c in s.text) / max(1, len(s.text)) for s in samples]
