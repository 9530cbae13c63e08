"""One call signature for the diffusion networks: model_output = denoiser(z, t).

Wraps an unconditional `UNet2DModel` (the demo models), a class-conditional one, or a text-conditioned
`UNet2DConditionModel` (SD 2.1, InstaFlow) with its prompt embeddings and classifier-free guidance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import UNet2DConditionModel, UNet2DModel

from engine.limits import require_int, require_number


MAX_PROMPT_CHARS = 10_000


@dataclass(frozen=True)
class Conditioning:
    prompt: str = ""               # forensic default: unknown prompt → empty prompt
    guidance: float = 1.0          # ≤ 1 → no classifier-free guidance (the conditional output alone, as diffusers)
    class_label: int | None = None # class-conditional UNet2DModel only

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or len(self.prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"the prompt must be text of at most {MAX_PROMPT_CHARS} characters")
        require_number(self.guidance, "the guidance scale (--guidance)", 0.0, 100.0)
        if self.class_label is not None:
            require_int(self.class_label, "the class label", 0, 1_000_000)

    @property
    def uses_guidance(self) -> bool:
        """Classifier-free guidance only above 1, as diffusers' pipelines and the reference code do: a guidance
        of 0 (InstaFlow's README) or 1 both mean the conditional prediction alone."""
        return self.guidance > 1.0


class Denoiser:
    def __init__(self, unet: torch.nn.Module, conditioning: Conditioning, text_encoder=None, tokenizer=None):
        self.unet = unet
        self.conditioning = conditioning
        self.is_text_conditioned = isinstance(unet, UNet2DConditionModel)
        self._embeddings: tuple[torch.Tensor, torch.Tensor | None] | None = None
        if self.is_text_conditioned:
            if text_encoder is None or tokenizer is None:
                raise ValueError("this UNet is text-conditioned but the model has no text encoder / tokenizer")
            self._embeddings = self._encode_prompts(text_encoder, tokenizer)
        elif conditioning.prompt:
            raise ValueError("this model is not text-conditioned: it cannot take a prompt")
        if isinstance(unet, UNet2DModel) and unet.config.num_class_embeds and conditioning.class_label is None:
            raise ValueError("this model is class-conditional: give a class label")

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @torch.no_grad()
    def _encode_prompts(self, text_encoder, tokenizer):
        def embed(text: str) -> torch.Tensor:
            ids = tokenizer(text, padding="max_length", max_length=tokenizer.model_max_length,
                            truncation=True, return_tensors="pt").input_ids
            return text_encoder(ids.to(text_encoder.device))[0].to(self.dtype)

        cond = embed(self.conditioning.prompt)
        uncond = embed("") if self.conditioning.uses_guidance else None
        return cond, uncond

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, t: float | int) -> torch.Tensor:
        """The raw network output (ε, v or flow velocity, per the model) in fp32."""
        zin = z.to(self.dtype)
        tt = torch.full((z.shape[0],), float(t), device=z.device, dtype=self.dtype if self.dtype != torch.float16 else torch.float32)
        if not self.is_text_conditioned:
            labels = None
            if self.conditioning.class_label is not None:
                labels = torch.full((z.shape[0],), self.conditioning.class_label, device=z.device, dtype=torch.long)
            return self.unet(zin, tt, class_labels=labels).sample.float()
        cond, uncond = self._embeddings
        b = z.shape[0]
        if uncond is None:
            return self.unet(zin, tt, encoder_hidden_states=cond.expand(b, -1, -1)).sample.float()
        out = self.unet(torch.cat([zin, zin]), torch.cat([tt, tt]),
                        encoder_hidden_states=torch.cat([uncond.expand(b, -1, -1), cond.expand(b, -1, -1)])).sample.float()
        out_u, out_c = out.chunk(2)
        return out_u + self.conditioning.guidance * (out_c - out_u)
