"""Darknet ``.cfg`` parsing: sections, keys and their line numbers, and the checks that refuse what
the builder does not implement (``path:line: reason`` errors). Building the model from a parsed cfg
is :mod:`yolo3.modeling.builder`; reading ``.weights`` is :mod:`yolo3.modeling.darknet_weights`.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

from ..errors import Yolo3Error

__all__ = ["DarknetError", "ModelFileError", "ModelNotFoundError", "CfgError", "Section", "DarknetCfg", "parse_cfg",
           "parse_cfg_text"]


class DarknetError(Yolo3Error):
    """A user-facing problem with a cfg or weights file; the message is one line."""


class ModelFileError(DarknetError):
    """A model or weights file that cannot be loaded (missing, a folder, corrupt, another format, a
    Lambda layer, no architecture); the message is one line naming the file and saying what it is."""


class ModelNotFoundError(ModelFileError, FileNotFoundError):
    """A model file that does not exist (also a ``FileNotFoundError``, as loaders raised before)."""


class CfgError(DarknetError):
    """A problem at one line of a cfg; the message is ``path:line: reason``.

    Args:
        path: the cfg file's path (``"<cfg>"`` for text without a file).
        line: 1-based line number of the offending key or section header.
        reason: what is wrong, one line.
    """

    def __init__(self, path: str, line: int, reason: str):
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}:{line}: {reason}")


# What each section may hold. Keys in *_IGNORED are training-only settings that do not change
# the forward pass; keys in *_UNSUPPORTED change it in ways this converter does not implement.
_NET_KEYS = {
    "batch", "subdivisions", "width", "height", "channels", "momentum", "decay", "angle", "saturation",
    "exposure", "hue", "learning_rate", "burn_in", "max_batches", "policy", "steps", "scales", "step",
    "gamma", "power", "mosaic", "min_crop", "max_crop", "aspect", "max_epochs", "seq_scales", "inputs",
    "time_steps", "notruth", "random", "adam", "b1", "b2", "eps", "center", "max_chart_loss", "cutmix",
    "letter_box", "flip", "blur", "gaussian_noise", "label_smooth_eps", "resize_step", "mixup", "track",
    "augment_speed", "sequential_subdivisions", "try_fix_nan", "loss_scale", "dynamic_minibatch",
    "optimized_memory", "workspace_size_limit_mb", "adversarial_lr", "attention", "ema_alpha",
    "contrastive", "unsupervised", "mosaic_bound", "show_receptive_field", "max", "min_crop_ratio",
    "init_sequential_subdivisions", "num_sigmas_reject_badlabels", "badlabels_rejection_percentage",
    "equidistant_point", "rgb_to_gray",
}


_YOLO_KEYS = {
    "mask", "anchors", "classes", "num", "jitter", "ignore_thresh", "truth_thresh", "random", "scale_x_y",
    "iou_normalizer", "cls_normalizer", "obj_normalizer", "delta_normalizer", "iou_loss", "iou_thresh",
    "iou_thresh_kind", "beta_nms", "nms_kind", "max_delta", "resize", "counters_per_class",
    "label_smooth_eps", "focal_loss", "map", "max", "objectness_smooth", "show_details", "uc_normalizer",
    "new_coords", "track_history_size", "sim_thresh", "dets_for_track", "dets_for_show", "track_ciou_norm",
    "embedding_layer", "yolo_point", "rescore",
}


_SECTION_KEYS = {
    "net": _NET_KEYS,
    "network": _NET_KEYS,
    "convolutional": {"filters", "size", "stride", "stride_x", "stride_y", "pad", "padding", "groups",
                      "activation", "batch_normalize", "dilation", "binary", "xnor", "bin_output", "flipped",
                      "dot", "antialiasing", "share_index", "assisted_excitation", "sway", "rotate", "stretch",
                      "stretch_sway", "coordconv", "stopbackward", "train_only_bn", "deform", "cbn"},
    "route": {"layers", "groups", "group_id", "stopbackward"},
    "shortcut": {"from", "activation", "weights_type", "weights_normalization", "stopbackward"},
    "upsample": {"stride", "scale"},
    "maxpool": {"size", "stride", "stride_x", "stride_y", "padding", "maxpool_depth", "out_channels",
                "antialiasing"},
    "avgpool": set(),
    "softmax": {"groups", "temperature", "tree", "spatial", "noloss"},
    "dropout": {"probability", "dropblock", "dropblock_size_rel", "dropblock_size_abs"},
    "yolo": _YOLO_KEYS,
}


_ACTIVATIONS = {"linear", "leaky", "relu", "logistic", "mish", "swish"}


@dataclass
class Section:
    """One ``[type]`` block of a cfg; ``line`` is where its header stands."""

    type: str
    options: dict[str, str]
    line: int
    key_lines: dict[str, int] = field(default_factory=dict)
    path: str = "<cfg>"

    def error(self, reason: str, key: str | None = None) -> CfgError:
        """A :class:`CfgError` located at ``key``'s line, or the section header's; not raised here.

        Args:
            reason: what is wrong; prefixed with ``[type]``.
            key: the option the problem is about, or None for the section itself.
        """
        line = self.key_lines.get(key, self.line) if key else self.line
        return CfgError(self.path, line, f"[{self.type}] {reason}")

    def get_int(self, key: str, default: int | None = None) -> int:
        """The option ``key`` as an int.

        Args:
            key: the option name (lower case).
            default: the value when the key is absent; None makes the key required.

        Raises:
            CfgError: the key is missing and has no default, or its value is not an integer.
        """
        if key not in self.options:
            if default is None:
                raise self.error(f"missing required key '{key}'")
            return default
        try:
            return int(self.options[key])
        except ValueError:
            raise self.error(f"'{key}={self.options[key]}' is not an integer", key) from None

    def get_float(self, key: str, default: float) -> float:
        """The option ``key`` as a float.

        Args:
            key: the option name (lower case).
            default: the value when the key is absent.

        Raises:
            CfgError: the value is not a number.
        """
        if key not in self.options:
            return default
        try:
            return float(self.options[key])
        except ValueError:
            raise self.error(f"'{key}={self.options[key]}' is not a number", key) from None

    def get_ints(self, key: str) -> list[int]:
        """The comma-separated option ``key`` as ints (empty items skipped), e.g. ``layers`` or ``mask``.

        Args:
            key: the option name (lower case); required.

        Raises:
            CfgError: the key is missing or an item is not an integer.
        """
        try:
            return [int(v) for v in self.options[key].split(",") if v.strip()]
        except KeyError:
            raise self.error(f"missing required key '{key}'") from None
        except ValueError:
            raise self.error(f"'{key}={self.options[key]}' is not a list of integers", key) from None

    def get_floats(self, key: str) -> list[float]:
        """The comma-separated option ``key`` as floats (empty items skipped), e.g. ``anchors``.

        Args:
            key: the option name (lower case); required.

        Raises:
            CfgError: the key is missing or an item is not a number.
        """
        try:
            return [float(v) for v in self.options[key].split(",") if v.strip()]
        except KeyError:
            raise self.error(f"missing required key '{key}'") from None
        except ValueError:
            raise self.error(f"'{key}={self.options[key]}' is not a list of numbers", key) from None


@dataclass
class DarknetCfg:
    """A parsed cfg: the ``[net]`` section and the layer sections (Darknet index = list index)."""

    net: Section
    layers: list[Section]
    path: str = "<cfg>"
    text: str = ""

    @property
    def width(self) -> int:
        return self.net.get_int("width", 416)

    @property
    def height(self) -> int:
        return self.net.get_int("height", 416)

    @property
    def channels(self) -> int:
        return self.net.get_int("channels", 3)

    @property
    def yolo_sections(self) -> list[Section]:
        return [s for s in self.layers if s.type == "yolo"]


def parse_cfg_text(text: str, path: str = "<cfg>") -> DarknetCfg:
    """Parse cfg text (``#`` and ``;`` start comments; section and key names are case-insensitive).

    Args:
        text: the whole cfg.
        path: the name used in error messages and kept in the result.

    Returns:
        The :class:`DarknetCfg`: ``[net]`` plus the layer sections in Darknet index order.

    Raises:
        CfgError: (``path:line: reason``) on unknown sections/keys, malformed lines, a cfg not starting
            with ``[net]``, or settings that change the forward pass in ways the builder does not implement.
    """
    sections: list[Section] = []
    for lineno, raw in enumerate(io.StringIO(text), 1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise CfgError(path, lineno, f"malformed section header '{line}'")
            typ = line[1:-1].strip().lower()
            if typ not in _SECTION_KEYS:
                raise CfgError(path, lineno, f"unknown section [{typ}]")
            sections.append(Section(typ, {}, lineno, {}, path))
            continue
        if "=" not in line:
            raise CfgError(path, lineno, f"expected 'key=value', got '{line}'")
        if not sections:
            raise CfgError(path, lineno, "key before the first [section]")
        key, value = (p.strip() for p in line.split("=", 1))
        key_l = key.lower()
        sec = sections[-1]
        if key_l not in _SECTION_KEYS[sec.type]:
            raise CfgError(path, lineno, f"unknown key '{key}' in [{sec.type}]")
        sec.options[key_l] = value
        sec.key_lines[key_l] = lineno
    if not sections or sections[0].type not in ("net", "network"):
        raise CfgError(path, sections[0].line if sections else 1, "the cfg must start with a [net] section")
    cfg = DarknetCfg(net=sections[0], layers=sections[1:], path=path, text=text)
    _validate(cfg)
    return cfg


def parse_cfg(path: str) -> DarknetCfg:
    """Read and parse a cfg file.

    Args:
        path: the ``.cfg`` file (UTF-8).

    Returns:
        The parsed :class:`DarknetCfg` (see :func:`parse_cfg_text`).

    Raises:
        DarknetError: the file is missing or unreadable.
        CfgError: the text does not parse (see :func:`parse_cfg_text`).
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise DarknetError(f"cfg file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DarknetError(f"cannot read cfg file {path}: {exc}") from None
    return parse_cfg_text(text, path)


#: section type -> keys that must be positive integers where given
_POSITIVE_KEYS = {"convolutional": ("filters", "size", "stride", "stride_x", "stride_y", "groups"),
                  "maxpool": ("size", "stride", "stride_x", "stride_y"), "upsample": ("stride",),
                  "yolo": ("classes", "num")}


def _validate_sizes(cfg: DarknetCfg) -> None:
    """Positive layer geometry; a detector's ``[net]`` width and height positive multiples of 32."""
    for key in ("width", "height", "channels"):
        if key in cfg.net.options and cfg.net.get_int(key) <= 0:
            raise cfg.net.error(f"'{key}={cfg.net.options[key]}' must be positive", key)
    if cfg.yolo_sections:
        for key in ("width", "height"):
            if key in cfg.net.options and cfg.net.get_int(key) % 32:
                raise cfg.net.error(f"'{key}={cfg.net.options[key]}' must be a multiple of 32 (the network's "
                                    "largest stride)", key)
    for sec in cfg.layers:
        for key in _POSITIVE_KEYS.get(sec.type, ()):
            if key in sec.options and sec.get_int(key) <= 0:
                raise sec.error(f"'{key}={sec.options[key]}' must be a positive integer", key)


def _validate(cfg: DarknetCfg) -> None:
    """Reject settings that change the forward pass in ways not implemented."""
    _validate_sizes(cfg)
    for sec in cfg.layers:
        o = sec.options
        if sec.type == "convolutional":
            act = o.get("activation", "logistic")
            if act not in _ACTIVATIONS:
                raise sec.error(f"activation '{act}' is not supported ({', '.join(sorted(_ACTIVATIONS))})",
                                "activation")
            for key, ok in (("dilation", "1"), ("binary", "0"), ("xnor", "0"), ("antialiasing", "0"),
                            ("deform", "0"), ("coordconv", "0"), ("assisted_excitation", "0")):
                if key in o and o[key].strip() != ok:
                    raise sec.error(f"'{key}={o[key]}' is not supported", key)
            if "share_index" in o:
                raise sec.error("'share_index' (shared weights) is not supported", "share_index")
            if sec.get_int("stride_x", sec.get_int("stride", 1)) != sec.get_int("stride_y", sec.get_int("stride", 1)):
                raise sec.error("different stride_x and stride_y are not supported", "stride_x")
        elif sec.type == "maxpool":
            if sec.get_int("maxpool_depth", 0):
                raise sec.error("'maxpool_depth' is not supported", "maxpool_depth")
            if sec.get_int("antialiasing", 0):
                raise sec.error("'antialiasing' is not supported", "antialiasing")
            if sec.get_int("stride_x", sec.get_int("stride", 1)) != sec.get_int("stride_y", sec.get_int("stride", 1)):
                raise sec.error("different stride_x and stride_y are not supported", "stride_x")
        elif sec.type == "shortcut":
            if o.get("weights_type", "none") != "none":
                raise sec.error(f"weighted shortcuts (weights_type={o['weights_type']}) are not supported",
                                "weights_type")
            act = o.get("activation", "linear")
            if act not in _ACTIVATIONS:
                raise sec.error(f"activation '{act}' is not supported", "activation")
        elif sec.type == "yolo":
            if sec.get_int("new_coords", 0):
                raise sec.error("'new_coords=1' (Scaled-YOLOv4 decoding) is not supported", "new_coords")
        elif sec.type == "softmax":
            if "tree" in o:
                raise sec.error("softmax trees are not supported", "tree")
