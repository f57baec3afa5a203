"""A real LeRobot reward-classifier checkpoint built offline: a tiny ResNet encoder saved locally
(the usual encoder comes from the Hugging Face hub, which is out of reach here). Four stages, as
resnet10: a 128x128 input ends as the 4x4 feature map LeRobot's spatial embedding expects."""

from pathlib import Path


def tiny_reward_classifier(directory: Path, cameras: int = 1) -> Path:
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.sac.reward_model.configuration_classifier import RewardClassifierConfig
    from lerobot.policies.sac.reward_model.modeling_classifier import Classifier
    from transformers import ResNetConfig, ResNetModel

    torch.manual_seed(0)
    encoder_dir = directory / "encoder"
    encoder = ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 8, 16, 16], depths=[1, 1, 1, 1]))
    encoder.save_pretrained(encoder_dir)
    config = RewardClassifierConfig(
        model_name=str(encoder_dir), num_cameras=cameras, latent_dim=16, hidden_dim=16,
        image_embedding_pooling_dim=2,
        input_features={f"observation.images.cam{i}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, 128, 128))
                        for i in range(cameras)})
    model = Classifier(config)
    checkpoint = directory / "checkpoint"
    model.save_pretrained(checkpoint)
    return checkpoint
