"""Markdown encodings of the records, in the seed's file formats (SPEC section 3).

``text`` holds the escaping rules and the tolerant document parser shared by every format; one
module per record kind renders and parses it.
"""
