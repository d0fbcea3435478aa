"""What MaixPy's kpu.load does with a model's bytes, as far as the file format decides it.

MaixPy's kmodel loader is a closed library (sipeed/MaixPy-v1 @ 973361c0d
components/kendryte_sdk/libs/lib_sipeed_kpu.a, lib_sipeed_kpu_v4.a), so the order of its checks and
the error for some defects are guesses. They are all here, in one place:

1. Fewer than 12 bytes, an unknown first word, v3 with arch != 0, a KMDL model whose version the
   build does not load (v5 anywhere; v4 on a v3-only build), or a v4 target other than 0/1:
   ``version`` (ERR_KMODEL_VERSION, 2002). Confirmed for v5 and for garbage at a flash offset.
2. The header or its tables (outputs, layer/node headers, v4 constants) run past the end of the
   file, or the bodies do by more than the 7 bytes of seek padding: ``read_file`` (2005; the
   firmware's exact reaction to a truncated file is UNCONFIRMED).
3. Zero layers (v3) / zero nodes (v4): ``body_size`` (UNCONFIRMED: chosen because the loader's
   walk over layer headers is where ERR_KMODEL_FORMAT comes from).
4. A layer (v3) or node (v4) body_size <= 0 read as a signed 32-bit int: ``body_size``
   (ERR_KMODEL_FORMAT, 2003; confirmed for v3 by its message, UNCONFIRMED for v4).
5. A v3 model whose first layer is not a K210 conv: ``first_layer`` (confirmed message).
Checks run in that order; memory (ERR_NO_MEM) is decided by the board, not here.
"""
from __future__ import annotations

from hil.errors import KModelFormatError
from hil.kmodel.format import loader_error_key, parse_kmodel, sniff_version


def maixpy_load_error(data: bytes, load_versions: tuple[int, ...] = (3, 4),
                      source: str = "<bytes>") -> str | None:
    """The hil.firmware.ErrorTexts key kpu.load raises for ``data``, or None when it loads.

    ``load_versions`` is the firmware profile's ``kpu.load_versions``.
    """
    version = sniff_version(data)
    if version is None or version not in load_versions:
        return "version"
    try:
        info = parse_kmodel(data, source)
    except KModelFormatError as exc:
        return loader_error_key(exc)
    if not info.first_layer_is_conv:
        return "first_layer"
    return None
