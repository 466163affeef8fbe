"""One identity per person: the comparison key of a userName or email, and what it may not hold.

Two spellings name the same person when their keys are equal. The key is Unicode's
compatibility caseless match (the Unicode Standard §3.13, D146: NFKD(casefold(NFKD(casefold(
NFD(x)))))), kept composed (NFKC): `rené@x.com` in NFC and in NFD key alike, and `BOB@x.com`,
`bob@x.com` in fullwidth letters or with a fullwidth full stop all key to `bob@x.com`.
Invisible characters are left out of the key; new values may not contain them at all
(`check_identity_text`), so this only makes a value stored before that rule compare equal to
its visible twin (and be reported as one).

What the client sent is stored and served as sent: IdPs compare what they read back with what
they hold, and a userName rewritten by the server would look like a change on every sync.
Only the key columns (users.user_name_key, users.email_key, user_emails.value_key) hold keys.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Iterator

from muster.errors import ScimError

# Characters that show nothing, or change the order in which the rest is shown: control and
# format characters (zero-width space/joiners, U+2060 word joiner, U+FEFF, the bidi embeddings,
# overrides and isolates, U+200E/U+200F marks, soft hyphen, tags...), line/paragraph
# separators and lone surrogates.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# Unicode's other default-ignorable code points (DerivedCoreProperties.txt): the combining
# grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian and other variation
# selectors, and the reserved ranges around them.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),
)
_IGNORABLE = frozenset(code for low, high in _IGNORABLE_RANGES for code in range(low, high + 1))
# Scripts that legitimately share one label (UTS #39 "highly restrictive"): Japanese mixes Han,
# Hiragana and Katakana; Chinese Han and Bopomofo; Korean Han and Hangul; each with Latin.
_COMPATIBLE_SCRIPTS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
# The first word of a letter's Unicode name is its script, but for these.
_SCRIPT_OF_NAME_WORD = {
    "CJK": "HAN",
    "IDEOGRAPHIC": "HAN",
    "HENTAIGANA": "HIRAGANA",
    "MODIFIER": "",  # modifier letters (ʼ) belong to no script
}
# What IDNA reads as a label separator; NFKC has already made the fullwidth ones "." and "。".
_LABEL_SEPARATORS = (".", "\u3002")


def is_invisible(char: str) -> bool:
    """Tell whether a character shows nothing or reorders the text around it."""
    return unicodedata.category(char) in _INVISIBLE_CATEGORIES or ord(char) in _IGNORABLE


def identity_key(value: str) -> str:
    """Return the key two spellings of one userName or email share (see the module docstring)."""
    if value.isascii() and value.isprintable():
        return value.lower()  # the common case: NFKC changes no ASCII, casefold is lower
    visible = "".join(char for char in value if not is_invisible(char))
    folded = unicodedata.normalize("NFD", visible).casefold()
    folded = unicodedata.normalize("NFKD", folded).casefold()
    return unicodedata.normalize("NFKC", folded)


def describe(char: str) -> str:
    """Name a character for an error message: `U+200B ZERO WIDTH SPACE`."""
    name = unicodedata.name(char, "")
    if not name:
        kind = "a control character" if unicodedata.category(char) == "Cc" else "unnamed"
        name = f"({kind})"
    return f"U+{ord(char):04X} {name}"


def check_identity_text(attribute: str, value: str) -> None:
    """Refuse a userName or email that hides characters or mixes scripts in a domain label.

    Either would let two people hold what reads as one address: `bob\\u200b@x.com` beside
    `bob@x.com`, or `bob@paypal.com` spelled with a Cyrillic a (U+0430) beside the real one.
    """
    if value.isascii() and value.isprintable() and "xn--" not in value.lower():
        return  # the common case, in 1 µs: nothing hidden, and every ASCII letter is Latin
    for char in value:
        if is_invisible(char):
            # Not "..., which is not allowed": services/log_hints.py reads that as a name rule.
            raise ScimError.invalid_value(
                f"{attribute} contains {describe(char)}: invisible and text-direction "
                "characters are not allowed, as they make one address look like another"
            )
    if value.count("@") != 1:
        return
    domain = identity_key(value.rpartition("@")[2])
    for label in _labels(domain):
        scripts = mixed_scripts(label)
        if scripts:
            raise ScimError.invalid_value(
                f"{attribute} has the domain label {label!r}, which mixes "
                f"{' and '.join(scripts)} letters: a look-alike of another domain is not allowed"
            )


def mixed_scripts(label: str) -> list[str]:
    """The scripts of a label's letters when they may not share a label, else [] (UTS #39)."""
    if label.isascii():
        return []  # every ASCII letter is Latin
    scripts = {script for script in map(_script, label) if script}
    if len(scripts) <= 1 or any(scripts <= allowed for allowed in _COMPATIBLE_SCRIPTS):
        return []
    return sorted(scripts)


def _labels(domain: str) -> Iterator[str]:
    for separator in _LABEL_SEPARATORS[1:]:
        domain = domain.replace(separator, _LABEL_SEPARATORS[0])
    for label in domain.split(_LABEL_SEPARATORS[0]):
        # An A-label (xn--...) is the same name as its Unicode form: judge what it spells.
        if label.startswith("xn--"):
            # An invalid one is no name DNS would serve: nothing to compare it with.
            with contextlib.suppress(UnicodeError, ValueError):
                label = label[4:].encode("ascii").decode("punycode")
        yield label


def _script(char: str) -> str:
    """The script of a letter, read from its Unicode name ("CYRILLIC SMALL LETTER A");
    "" for anything that is not a letter (digits, hyphens, marks belong to every script)."""
    if not unicodedata.category(char).startswith("L"):
        return ""
    word = unicodedata.name(char, "").split(" ", 1)[0].split("-", 1)[0]
    return _SCRIPT_OF_NAME_WORD.get(word, word)
