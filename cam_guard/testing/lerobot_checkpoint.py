"""Real LeRobot reward-classifier checkpoints built offline (the usual encoder comes from the Hugging Face
hub, which is out of reach here): tests use a tiny one, the GPU bench one of the size HIL-SERL trains.

Both encoders have four stages, as resnet10: a 128x128 input ends as the 4x4 feature map LeRobot's spatial
embedding expects.
"""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EncoderSize:
    embedding_size: int
    hidden_sizes: tuple[int, int, int, int]
    latent_dim: int
    hidden_dim: int
    pooling_dim: int


TINY = EncoderSize(embedding_size=8, hidden_sizes=(8, 8, 16, 16), latent_dim=16, hidden_dim=16, pooling_dim=2)
# helper2424/resnet10 (LeRobot's default encoder) with RewardClassifierConfig's defaults.
RESNET10 = EncoderSize(embedding_size=64, hidden_sizes=(64, 128, 256, 512), latent_dim=256, hidden_dim=256,
                       pooling_dim=8)


def reward_classifier_checkpoint(directory: Path, cameras: int = 1, size: EncoderSize = TINY) -> Path:
    """A `Classifier.from_pretrained` directory with random (seeded) weights for `cameras` cameras."""
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.sac.reward_model.configuration_classifier import RewardClassifierConfig
    from lerobot.policies.sac.reward_model.modeling_classifier import Classifier
    from transformers import ResNetConfig, ResNetModel

    torch.manual_seed(0)
    encoder_dir = directory / "encoder"
    encoder = ResNetModel(ResNetConfig(embedding_size=size.embedding_size, hidden_sizes=list(size.hidden_sizes),
                                       depths=[1, 1, 1, 1]))
    encoder.save_pretrained(encoder_dir)
    config = RewardClassifierConfig(
        model_name=str(encoder_dir), num_cameras=cameras, latent_dim=size.latent_dim, hidden_dim=size.hidden_dim,
        image_embedding_pooling_dim=size.pooling_dim,
        input_features={f"observation.images.cam{i}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, 128, 128))
                        for i in range(cameras)})
    model = Classifier(config)
    checkpoint = directory / "checkpoint"
    model.save_pretrained(checkpoint)
    return checkpoint
