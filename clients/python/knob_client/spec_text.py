"""Reads an experiment spec as knobd stores it (the text it was given: JSON or YAML) into dicts and lists.

JSON is read by the json module. YAML is read by a small reader of what experiment specs use: block mappings and
sequences, flow collections (`{a: 1, b: [x, y]}`), plain, single- and double-quoted scalars, literal and folded
block scalars (`|`, `>-`, ...) and comments. Anything else (anchors, aliases, tags, several documents, plain
scalars over several lines) raises ValueError. Plain scalars are typed as knob types them when it prints a
spec as JSON: a whole number is an int, another finite number a float, true/false a bool, null/~/nothing None;
everything else, and anything quoted, is a string.
"""

import json
import math
import re

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parse(text):
    """The document of `text`, JSON or YAML; ValueError when it is neither (or YAML this reader does not read)."""
    text = text.lstrip("\ufeff")
    if text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return _Reader(text).document()


def plain_scalar(text):
    """The value of an unquoted scalar, typed as knob types it."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text == "true":
        return True
    if text == "false":
        return False
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if _NUMBER.fullmatch(text):
        value = float(text)
        if math.isfinite(value):
            return value
    return text


class _Reader:
    def __init__(self, text):
        self.lines = text.split("\n")
        if self.lines[-1] == "":
            self.lines.pop()  # what follows the last line break is no line
        self.index = 0
        self.started = False

    # -- lines ---------------------------------------------------------------------------------------------------

    def _line(self):
        """(indent, content without its comment) of the current line, or None at the end; skips blank lines and
        the document start marker."""
        while self.index < len(self.lines):
            raw = self.lines[self.index].rstrip("\r")
            content = _strip_comment(raw).rstrip()
            stripped = content.lstrip(" ")
            if stripped.startswith("\t"):
                raise ValueError(f"line {self.index + 1}: a tab in the indentation")
            if stripped == "":
                self.index += 1
                continue
            if content in ("---", "..."):
                if content == "---" and not self.started:
                    self.index += 1
                    continue
                if content == "...":
                    return None
                raise ValueError(f"line {self.index + 1}: a second document")
            self.started = True
            return len(content) - len(stripped), stripped
        return None

    def document(self):
        current = self._line()
        if current is None:
            raise ValueError("the spec is empty")
        value = self._node(current[0])
        if self._line() is not None:
            raise ValueError(f"line {self.index + 1}: unexpected indentation")
        return value

    # -- block nodes ---------------------------------------------------------------------------------------------

    def _node(self, indent):
        line_indent, content = self._line()
        if content.startswith(("&", "*", "!")):
            raise ValueError(f"line {self.index + 1}: anchors, aliases and tags are not read")
        if content == "-" or content.startswith("- "):
            return self._sequence(line_indent)
        if _split_key(content) is not None:
            return self._mapping(line_indent)
        self.index += 1
        return self._inline(content, line_indent)

    def _mapping(self, indent):
        result = {}
        while (current := self._line()) is not None and current[0] == indent:
            split = _split_key(current[1])
            if split is None:
                raise ValueError(f"line {self.index + 1}: expected `key: value`")
            key, rest = split
            if key in result:
                raise ValueError(f"line {self.index + 1}: the key {key!r} appears twice")
            self.index += 1
            result[key] = self._value(rest, indent)
        if current is not None and current[0] > indent:
            raise ValueError(f"line {self.index + 1}: unexpected indentation")
        return result

    def _sequence(self, indent):
        result = []
        while (current := self._line()) is not None and current[0] == indent and \
                (current[1] == "-" or current[1].startswith("- ")):
            rest = current[1][1:].lstrip(" ")
            if not rest:
                self.index += 1
                following = self._line()
                result.append(self._node(following[0]) if following and following[0] > indent else None)
                continue
            if rest[:1] in ("|", ">"):
                self.index += 1
                result.append(self._block_scalar(rest, indent))
                continue
            # The item's content starts a node at its own column: "- key: v" continues with "  key2: v2".
            column = indent + len(current[1]) - len(rest)
            self.lines[self.index] = " " * column + rest
            result.append(self._node(column))
        if current is not None and current[0] > indent:
            raise ValueError(f"line {self.index + 1}: unexpected indentation")
        return result

    def _value(self, rest, indent):
        """The value after `key:` on a line of a mapping at `indent`."""
        if rest[:1] in ("|", ">"):
            return self._block_scalar(rest, indent)
        if rest:
            return self._inline(rest, indent)
        following = self._line()
        if following is None:
            return None
        if following[0] > indent:
            return self._node(following[0])
        if following[0] == indent and (following[1] == "-" or following[1].startswith("- ")):
            return self._sequence(indent)
        return None

    def _inline(self, text, indent):
        """A scalar or a flow collection, which may go on over the next lines until its brackets close."""
        if text.startswith(("&", "*", "!")):
            raise ValueError(f"line {self.index}: anchors, aliases and tags are not read")
        if text[:1] in ("[", "{"):
            while not _balanced(text):
                if self.index >= len(self.lines):
                    raise ValueError("a flow collection is not closed")
                text += " " + _strip_comment(self.lines[self.index]).strip()
                self.index += 1
            value, end = _flow(text, 0)
            if text[end:].strip():
                raise ValueError(f"line {self.index}: {text[end:].strip()!r} after a flow collection")
            return value
        following = self._line()
        if following is not None and following[0] > indent:
            raise ValueError(f"line {self.index + 1}: a plain scalar over several lines is not read")
        return _scalar(text)

    def _block_scalar(self, header, indent):
        match = re.fullmatch(r"([|>])([-+]?)(\d?)([-+]?)", header)
        if not match:
            raise ValueError(f"line {self.index}: a block scalar header {header!r} is not read")
        style, chomp = match.group(1), match.group(2) or match.group(4)
        lines = []
        block_indent = indent + int(match.group(3)) if match.group(3) else None
        while self.index < len(self.lines):
            raw = self.lines[self.index].rstrip("\r")
            if raw.strip() == "":
                lines.append("")
                self.index += 1
                continue
            here = len(raw) - len(raw.lstrip(" "))
            if block_indent is None:
                block_indent = here
            if here < block_indent or here <= indent:
                break
            lines.append(raw[block_indent:])
            self.index += 1
        trailing = len(lines) - len([line for line in lines if line]) if not any(lines) else \
            len(lines) - max(i for i, line in enumerate(lines) if line) - 1
        body = lines[: len(lines) - trailing]
        if style == "|":
            text = "\n".join(body)
        else:
            text = ""
            for i, line in enumerate(body):
                previous = body[i - 1] if i else None
                if i == 0:
                    text = line
                elif line == "":
                    text += "\n"  # a blank line is a line break; the break before it folds away
                elif previous == "":
                    text += ("\n" if line.startswith(" ") else "") + line
                elif line.startswith(" ") or previous.startswith(" "):
                    text += "\n" + line  # more-indented lines keep their breaks
                else:
                    text += " " + line
        if chomp == "-" or not body:
            return text
        if chomp == "+":
            return text + "\n" * (trailing + 1)
        return text + "\n"


def _strip_comment(line):
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in ("'", '"') and (i == 0 or line[:i].rstrip()[-1:] in ("", ":", "-", "[", "{", ",", "?")):
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in (" ", "\t")):
            return line[:i]
    return line


def _split_key(content):
    """(key, rest) of a `key: rest` line, or None when it is not one."""
    if content[:1] in ("[", "{"):
        return None
    if content[:1] in ("'", '"'):
        key, end = _quoted(content, 0)
        rest = content[end:]
        if rest == ":" or rest.startswith(": "):
            return key, rest[1:].strip()
        return None
    match = re.search(r":( |$)", content)
    if not match:
        return None
    return content[: match.start()].rstrip(), content[match.end():].strip()


def _scalar(text):
    if text[:1] in ("'", '"'):
        value, end = _quoted(text, 0)
        if text[end:].strip():
            raise ValueError(f"{text[end:].strip()!r} after a quoted scalar")
        return value
    return plain_scalar(text)


def _quoted(text, start):
    """(value, index after the closing quote) of the quoted scalar at `start`."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        if quote == "'" and text[i] == "'":
            if text[i + 1: i + 2] == "'":
                i += 2
                continue
            return text[start + 1: i].replace("''", "'"), i + 1
        if quote == '"':
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == '"':
                return json.loads(text[start: i + 1]), i + 1
        i += 1
    raise ValueError(f"an unclosed quote in {text!r}")


def _balanced(text):
    depth, quote, i = 0, None, 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\" and quote == '"':
                i += 1
            elif char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        i += 1
    return depth <= 0


def _flow(text, i):
    """(value, index after it) of the flow node at `i`."""
    while text[i] == " ":
        i += 1
    if text[i] in ("[", "{"):
        closing = "]" if text[i] == "[" else "}"
        mapping = text[i] == "{"
        result = {} if mapping else []
        i += 1
        while True:
            while text[i] == " ":
                i += 1
            if text[i] == closing:
                return result, i + 1
            if mapping:
                key, i = _flow_scalar(text, i, key=True)
                while text[i] == " ":
                    i += 1
                if text[i] == ":":
                    value, i = _flow(text, i + 1)
                else:
                    value = None
                result[str(key) if not isinstance(key, str) else key] = value
            else:
                value, i = _flow(text, i)
                result.append(value)
            while text[i] == " ":
                i += 1
            if text[i] == ",":
                i += 1
            elif text[i] != closing:
                raise ValueError(f"expected ',' or {closing!r} in {text!r}")
    return _flow_scalar(text, i)


def _flow_scalar(text, i, key=False):
    while text[i] == " ":
        i += 1
    if text[i] in ("'", '"'):
        return _quoted(text, i)
    end = i
    while end < len(text) and text[end] not in ",]}" and not (text[end] == ":" and (key or text[end + 1: end + 2] in (" ", ",", "]", "}", ""))):
        end += 1
    raw = text[i:end].strip()
    return (raw if key else plain_scalar(raw)), end
