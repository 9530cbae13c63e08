"""Per latent channel: sample std and the encoder's error on 32 generated samples, for each model folder given.

    .venv/bin/python benchmarks/results/demo_unet_8000_steps/per_channel.py resources/models/demo out/s3/models/demo

(the second folder is what `packaging/train_demo_model.py --only demo --unet-steps 8000 --unet-bf16
--center-latents --out out/s3/models` writes; it is not committed). Same evaluation noises as the training
script's sample grid; the training latents' per-channel std is in each folder's training_report.json.
"""
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "packaging"))
import train_demo_model as T  # noqa: E402
from diffusers import AutoencoderKL, UNet2DModel  # noqa: E402

torch.set_num_threads(2)
T.LATENT = 32
for folder in sys.argv[1:]:
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", use_safetensors=True, local_files_only=True)
    unet = UNet2DModel.from_pretrained(folder, subfolder="unet", use_safetensors=True, local_files_only=True).eval()
    sf = vae.config.scaling_factor
    zT = torch.randn(32, 4, 32, 32, generator=torch.Generator().manual_seed(20240701))
    with torch.no_grad():
        z = T.ddim_sample(unet, zT, 50)
        ze = T.encode_mode(vae, T.from_uint8(T.to_uint8(T.decode(vae, z / sf)))) * sf
    per_channel = lambda t: [round(float(v), 2) for v in t.transpose(0, 1).flatten(1).pow(2).mean(1).sqrt()]  # noqa: E731
    print(folder, "| sample std per channel", [round(float(v), 2) for v in z.transpose(0, 1).flatten(1).std(1)],
          "| encoder error rms per channel", per_channel(ze - z), f"| encoder NMSE {T.nmse_db(ze, z):.2f} dB")
