"""The near-duplicate edits of the dedup and scale benchmarks: what a crawl does to a copy."""

BOILERPLATE = [
    "Share this article on Facebook, Twitter and LinkedIn.",
    "Subscribe to our newsletter to get the latest updates in your inbox.",
    "This page was last edited on 12 March 2021, at 14:05.",
    "We use cookies to improve your experience. By continuing you agree to our cookie policy.",
]


def edit(text, kind, rng):
    """An edited copy of text (kind 0-5; the word edits need at least 3 words)."""
    words = text.split()
    if kind == 0:
        for _ in range(3):
            words.pop(rng.randrange(len(words)))
        return " ".join(words)
    if kind == 1:
        for _ in range(2):
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        return " ".join(words)
    if kind == 2:
        return "  ".join(w.upper() if i % 3 == 0 else w.lower() for i, w in enumerate(words))
    if kind == 3:
        return text + "\n" + rng.choice(BOILERPLATE)
    if kind == 4:
        return rng.choice(BOILERPLATE) + "\n" + text
    return text[: len(text) * 95 // 100]
