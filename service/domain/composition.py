"""A reel's composition (what moderators arrange) and its manifest (what one render used),
as values that check themselves. Both are kept on the reel's row as JSON of the same shape
as ever: `to_json()` writes it, `from_json()` reads it back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from media.canvas import CANVASES
from service.domain.text import one_line
from service.errors import Unprocessable

MAX_ITEMS = 30
TRANSITIONS = ("cut", "crossfade")
CROSSFADE_FRAMES = (8, 15, 30)  # 0.27 s, 0.5 s, 1 s
ASSET_KINDS = {"music_asset": "music", "intro_asset": "intro", "outro_asset": "outro"}
TITLE_CHARS = 120
CARD_CHARS = 80
DEFAULT_COLOR = "#1d3557"


def reel_title(raw: object) -> str:
    title = one_line(raw, TITLE_CHARS)
    if not title:
        raise Unprocessable("Give the reel a title.", code="title_required")
    return title


def reel_canvas(raw: object) -> str:
    if str(raw) not in CANVASES:
        raise Unprocessable("canvas must be one of %(choices)s.", choices=", ".join(CANVASES),
                            code="invalid_canvas")
    return str(raw)


@dataclass(frozen=True)
class Item:
    """One approved clip in the reel, with its span in frames."""

    clip_id: str
    trim_in: int
    trim_out: int


@dataclass(frozen=True)
class TitleCard:
    text: str
    color: str = DEFAULT_COLOR

    def __post_init__(self) -> None:
        if not self.text or len(self.text) > CARD_CHARS:
            raise Unprocessable("A title card has 1 to %(limit)s characters of text.",
                                limit=CARD_CHARS,
                                code="invalid_title_card")
        color = self.color
        if not (len(color) == 7 and color[0] == "#"
                and all(c in "0123456789abcdefABCDEF" for c in color[1:])):
            raise Unprocessable("The brand colour is #rrggbb.", code="invalid_color")
        object.__setattr__(self, "color", color.lower())

    @classmethod
    def parse(cls, raw: object) -> TitleCard | None:
        """From a request: {text, color} or null."""
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise Unprocessable("title_card is {text, color} or null.", code="invalid_title_card")
        return cls(one_line(raw.get("text")), str(raw.get("color") or DEFAULT_COLOR))


@dataclass(frozen=True)
class Composition:
    items: tuple[Item, ...] = ()
    transition: str = "cut"
    crossfade_frames: int = 15
    title_card: TitleCard | None = None
    captions: bool = True
    music_asset: str | None = None
    intro_asset: str | None = None
    outro_asset: str | None = None

    def __post_init__(self) -> None:
        if len(self.items) > MAX_ITEMS:
            raise Unprocessable("items is a list of at most %(limit)s clips.", limit=MAX_ITEMS,
                                code="invalid_items")
        if len({item.clip_id for item in self.items}) != len(self.items):
            raise Unprocessable("A clip can be in a reel once.", code="duplicate_clip")
        if self.transition not in TRANSITIONS:
            raise Unprocessable("transition is cut or crossfade.", code="invalid_reel_transition")
        if self.crossfade_frames not in CROSSFADE_FRAMES:
            raise Unprocessable("crossfade_frames is one of %(choices)s.",
                                choices=", ".join(map(str, CROSSFADE_FRAMES)),
                                code="invalid_reel_transition")

    @property
    def overlap(self) -> int:
        """Frames each join overlaps (0 for hard cuts)."""
        return self.crossfade_frames if self.transition == "crossfade" else 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"items": [asdict(item) for item in self.items],
                               "title_card": asdict(self.title_card) if self.title_card else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Composition:
        card = data.get("title_card")
        return cls(items=tuple(Item(**item) for item in data.get("items", [])),
                   transition=data.get("transition", "cut"),
                   crossfade_frames=data.get("crossfade_frames", 15),
                   title_card=TitleCard(**card) if card else None,
                   captions=data.get("captions", True),
                   music_asset=data.get("music_asset"), intro_asset=data.get("intro_asset"),
                   outro_asset=data.get("outro_asset"))


@dataclass(frozen=True)
class ManifestClip:
    """A clip as one render used it: its version, its consent, its span and its caption."""

    clip_id: str
    clip_version: int
    consent_basis: str
    release_version: int | None
    release_sha256: str | None
    consented_at: str
    trim_in: int
    trim_out: int
    caption: dict[str, str] | None  # {name, quote}, or None without captions

    @property
    def frames(self) -> int:
        return self.trim_out - self.trim_in


@dataclass(frozen=True)
class Manifest:
    """Everything a render depends on, so that rendering it again gives the same frames."""

    reel_id: str
    version: int
    canvas: str
    template: int
    overlap: int
    title_card: dict[str, str] | None
    clips: tuple[ManifestClip, ...]
    music: str | None
    intro: str | None
    outro: str | None
    kumpul: str
    rendered: dict[str, Any] = field(default_factory=dict)  # added by the render: frames...

    def to_json(self) -> dict[str, Any]:
        data = asdict(self) | {"clips": [asdict(clip) for clip in self.clips]}
        rendered: dict[str, Any] = data.pop("rendered")
        return data | rendered

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        known = {"reel_id", "version", "canvas", "template", "overlap", "title_card", "music",
                 "intro", "outro", "kumpul"}
        return cls(**{k: data[k] for k in known},
                   clips=tuple(ManifestClip(**clip) for clip in data["clips"]),
                   rendered={k: v for k, v in data.items() if k not in known | {"clips"}})
