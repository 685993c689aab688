"""Text a hand-in wrote (its name, its messages), made safe where it enters the review (`clean`) and inert for where
the review puts it: a terminal, a spreadsheet's cell, a Markdown or HTML page. No business logic: the one place
that knows each medium's traps."""
import html
import re

# C0 and C1 control characters but the newline and the tab (escape sequences move the cursor, retitle the terminal,
# write the clipboard), and the bidirectional overrides that make text read otherwise than it runs.
CONTROL = re.compile('[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]')
# Half of a UTF-16 pair alone: JSON's \udcff, or a file name's undecodable byte as Python reads it (surrogateescape).
# No UTF-8 file, terminal or page can hold one.
LONE_SURROGATE = re.compile('[\ud800-\udfff]')
# OWASP's CSV injection: a cell beginning with one of these is read as a formula.
FORMULA_START = ('=', '+', '-', '@', '\t', '\r')
# What makes Markdown a link, an image, code or a table's cell; emphasis (* _) only changes how text looks.
MARKDOWN_PUNCTUATION = re.compile(r'([\\`\[\]|])')


def clean(value):
    """A value a hand-in sent (a string, or lists and dicts of them), with every string safe to write anywhere: each
    lone surrogate (an undecodable byte) the replacement character, each control character its escape."""
    if isinstance(value, str):
        return terminal(decodable(value))
    if isinstance(value, list):
        return [clean(item) for item in value]
    if isinstance(value, dict):
        return {clean(key): clean(item) for key, item in value.items()}
    return value


def decodable(text):
    """text with each lone surrogate the replacement character (U+FFFD): what UTF-8 can write."""
    return LONE_SURROGATE.sub('\ufffd', text)


def terminal(text):
    """text with each control character written as its escape (\\x1b), so that printing it prints it."""
    return CONTROL.sub(lambda found: found.group().encode('unicode_escape').decode(), str(text))


def spreadsheet(value):
    """A gradebook cell that a spreadsheet shows as text, never runs as a formula (numbers stay numbers)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = terminal(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def markdown(text):
    """text for one line of Markdown (a table cell, a title): HTML escaped, Markdown's punctuation escaped,
    white space folded."""
    return MARKDOWN_PUNCTUATION.sub(r'\\\1', html.escape(re.sub(r'\s+', ' ', terminal(text)).strip(), quote=True))
