"""Raises at import inside a library it calls (json): the message must show this file's
line and the library's frames, and name the library's exception."""
import json


def read_settings(text):
    return json.loads(text)


SETTINGS = read_settings("{not json")  # the line a load error must point at
