"""Model families, one folder each (``hdm/``); :mod:`.registry` finds them."""
