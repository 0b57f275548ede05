"""XrayDataModule on synthetic data: stages, splits, loaders, determinism, cache, config."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from PIL import Image

from xray_lightning.data import STAGES, XrayDataModule, load_image, prepare_batch
from xray_lightning.data.stages import stratified_holdout
from xray_lightning.data.synthetic import DEFAULT_COUNTS, make_image

REPO = Path(__file__).resolve().parents[1]


def _dm(root: Path, **kw) -> XrayDataModule:
    dm = XrayDataModule(root=root, **kw)
    dm.setup("fit")
    return dm


def test_stages_class_names_and_summary(synthetic_root: Path) -> None:
    train_total = DEFAULT_COUNTS["train"]
    for stage, names in STAGES.items():
        dm = _dm(synthetic_root, stage=stage)
        assert dm.class_names == names and dm.num_classes == len(names)
        summary = dm.summary()
        assert list(summary) == ["train", "val", "test", "showcase"]
        assert all(tuple(per) == names for per in summary.values())
        both = {c: summary["train"][c] + summary["val"][c] for c in names}
        if stage == "normal_vs_infected":
            assert both == {
                "normal": train_total["normal"],
                "infected": train_total["non-covid"] + train_total["covid"],
            }
        else:
            assert both["covid"] == train_total["covid"]
            assert both["non-covid"] == train_total["non-covid"]
        assert sum(summary["showcase"].values()) == len(dm.split_paths("showcase"))
    assert STAGES["covid_vs_noncovid"] == ("non-covid", "covid")


def test_holdout_is_stratified_disjoint_and_shared_by_stages(synthetic_root: Path) -> None:
    dms = {s: _dm(synthetic_root, stage=s) for s in STAGES}
    three = dms["three_class"]
    val3, train3 = set(three.split_paths("val")), set(three.split_paths("train"))
    assert not val3 & train3
    assert set(dms["normal_vs_infected"].split_paths("val")) == val3
    infected_val = {p for p in val3 if "/infected/" in p.as_posix()}
    assert set(dms["covid_vs_noncovid"].split_paths("val")) == infected_val
    assert set(dms["covid_vs_noncovid"].split_paths("train")) <= train3
    for cls, n in DEFAULT_COUNTS["train"].items():
        assert three.summary()["val"][cls] == round(0.1 * n)
    # labels follow the folders
    for path, label in zip(three.split_paths("val"), three.split_labels("val"), strict=True):
        folder = path.parent.name
        assert three.class_names[int(label)] == folder


def test_holdout_moves_with_split_seed_not_training_seed(synthetic_root: Path) -> None:
    base = _dm(synthetic_root, seed=0).split_paths("val")
    assert _dm(synthetic_root, seed=123).split_paths("val") == base
    assert set(_dm(synthetic_root, split_seed=1).split_paths("val")) != set(base)
    bigger = _dm(synthetic_root, val_fraction=0.3)
    assert sum(bigger.summary()["val"].values()) == sum(round(0.3 * n) for n in (30, 40, 30))


def test_holdout_groups_keep_duplicates_on_one_side() -> None:
    labels = [0] * 10 + [1] * 10
    plain = stratified_holdout(labels, 0.5, seed=3)
    # pair one held and one trained item of each class: each pair must end on one side
    held0, kept0 = (torch.nonzero(plain[:10] == v).flatten()[0].item() for v in (True, False))
    groups = list(range(20))
    groups[kept0] = groups[held0] = "a"
    grouped = stratified_holdout(labels, 0.5, seed=3, groups=groups)
    assert grouped[held0] == grouped[kept0]
    others = [i for i in range(20) if i not in (held0, kept0)]
    assert torch.equal(grouped[others], plain[others])  # nothing else moves


def test_duplicate_files_never_straddle_train_and_val(synthetic_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "dataset"
    shutil.copytree(synthetic_root, root)
    folder = root / "train" / "normal"
    val = {p.name for p in _dm(root).split_paths("val") if p.parent == folder}
    trained = sorted(p.name for p in folder.iterdir() if p.name not in val)
    # overwrite three trained images with a copy of one held-out image: a group of four
    source = folder / sorted(val)[0]
    for name in trained[:3]:
        shutil.copyfile(source, folder / name)
    held = {p.name for p in _dm(root).split_paths("val") if p.parent == folder}
    copies = {source.name, *trained[:3]}
    # 1 of the 4 copies was held out: the majority side (train) takes the whole group
    assert copies.isdisjoint(held)
    assert held == val - {source.name}  # nothing else moved


def test_loaders_yield_raw_uint8_batches(synthetic_root: Path) -> None:
    dm = _dm(synthetic_root, batch_size=16, eval_batch_size=20)
    n_train = sum(dm.summary()["train"].values())
    loader = dm.train_dataloader()
    assert len(loader) == -(-n_train // 16)
    batches = list(loader)
    images, labels, seed = batches[0]
    assert images.dtype == torch.uint8 and images.shape == (16, 1, 150, 150)
    assert labels.dtype == torch.int64 and labels.shape == (16,)
    assert int(seed) == -1  # augmentation off
    assert sum(len(b[1]) for b in batches) == n_train
    val = dm.val_dataloader()
    assert isinstance(val, list) and len(val) == 2
    assert sum(len(b[1]) for b in val[1]) == sum(dm.summary()["test"].values())
    single = XrayDataModule(root=synthetic_root, eval_test_each_epoch=False).val_dataloader()
    assert isinstance(single, torch.utils.data.DataLoader)
    # split_dataloader keeps file order and labels
    got = torch.cat([b[1] for b in dm.split_dataloader("test")])
    assert torch.equal(got, dm.split_labels("test"))
    with pytest.raises(ValueError, match="split must be one of"):
        dm.split_dataloader("holdout")


def _epoch(dm: XrayDataModule, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return [dm.transform_batch(b, train=True) for b in loader]


def test_shuffling_and_augmentation_depend_only_on_seed_and_epoch(synthetic_root: Path) -> None:
    aug = {"enabled": True, "hflip": True}
    a = _dm(synthetic_root, augmentation=aug, batch_size=32)
    torch.manual_seed(0)
    first = _epoch(a, 1)
    torch.manual_seed(999)  # the global RNG plays no part
    again = _epoch(_dm(synthetic_root, augmentation=aug, batch_size=32), 1)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    other_epoch = _epoch(a, 2)
    assert not torch.equal(first[0][1], other_epoch[0][1])
    other_seed = _epoch(_dm(synthetic_root, augmentation=aug, seed=7, batch_size=32), 1)
    assert not torch.equal(first[0][0], other_seed[0][0])


def test_augmentation_only_when_training(synthetic_root: Path) -> None:
    dm = _dm(synthetic_root, augmentation={"enabled": True}, batch_size=8)
    batch = next(iter(dm.train_dataloader()))
    plain, _ = dm.transform_batch(batch, train=False)
    augmented, labels = dm.transform_batch(batch, train=True)
    assert augmented.dtype == torch.float32 and augmented.shape == (8, 1, 150, 150)
    assert labels.dtype == torch.int64
    assert (augmented - plain).abs().mean() > 0.05
    assert torch.equal(dm.transform_batch(batch, train=True)[0], augmented)
    eval_batch = next(iter(dm.split_dataloader("train")))
    assert int(eval_batch[2]) == -1
    assert torch.equal(*[dm.transform_batch(eval_batch, train=t)[0] for t in (True, False)])


def test_normalisation_uses_train_split_stats(synthetic_root: Path) -> None:
    dm = _dm(synthetic_root, stage="normal_vs_infected")
    x = torch.cat([dm.transform_batch(b, train=False)[0] for b in dm.split_dataloader("train")])
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1.0) < 1e-3
    other = _dm(synthetic_root, stage="covid_vs_noncovid")  # stats shared by the cascade stages
    assert other.preprocess_spec()["mean"] == dm.preprocess_spec()["mean"]
    off = _dm(synthetic_root, preprocessing={"normalize": False})
    x = off.transform_batch(next(iter(off.split_dataloader("test"))), train=False)[0]
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_weighted_sampler_balances_classes(synthetic_root: Path) -> None:
    dm = _dm(synthetic_root, stage="three_class", imbalance="sampler", batch_size=50)
    counts = torch.zeros(3)
    for epoch in range(20):
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        for _, labels, _ in loader:
            counts += torch.bincount(labels, minlength=3)
    share = counts / counts.sum()
    assert torch.allclose(share, torch.full((3,), 1 / 3), atol=0.04), share
    plain = torch.bincount(dm.split_labels("train"), minlength=3).float()
    assert not torch.allclose(plain / plain.sum(), torch.full((3,), 1 / 3), atol=0.04)


def test_pos_weight_and_class_weights(synthetic_root: Path) -> None:
    dm = _dm(synthetic_root, stage="normal_vs_infected")
    train = dm.summary()["train"]
    assert dm.pos_weight() == pytest.approx(train["normal"] / train["infected"])
    w = dm.class_weights()
    assert float(w.mean()) == pytest.approx(1.0)
    assert float(w[0] / w[1]) == pytest.approx(train["infected"] / train["normal"])
    with pytest.raises(ValueError, match="binary"):
        _dm(synthetic_root, stage="three_class").pos_weight()


@pytest.mark.parametrize(
    "pre",
    [{}, {"equalize": True, "border_crop": 0.1, "denoise": "median"}, {"denoise": "gaussian"}],
)
def test_prepare_batch_matches_the_datamodule(synthetic_root: Path, pre: dict) -> None:
    dm = _dm(synthetic_root, preprocessing=pre, image_size=64, eval_batch_size=6)
    spec = json.loads(json.dumps(dm.preprocess_spec()))  # JSON-able
    assert spec["image_size"] == 64 and spec["preprocessing"]["equalize"] == pre.get(
        "equalize", False
    )
    expected, _ = dm.transform_batch(next(iter(dm.split_dataloader("test"))), train=False)
    raw = torch.stack([load_image(p, 64, 150, "L") for p in dm.split_paths("test")[:6]])
    assert torch.allclose(prepare_batch(raw, spec), expected, atol=1e-5)


def test_cache_hits_on_same_content_and_misses_on_change(synthetic_root: Path, tmp_path) -> None:
    root = Path(shutil.copytree(synthetic_root, tmp_path / "ds"))
    cache = tmp_path / "cache"
    cold = _dm(root, cache_dir=cache)
    assert not cold.data.info["cache_hit"] and len(list(cache.glob("*.pt"))) == 1
    warm = _dm(root, cache_dir=cache)
    assert warm.data.info["cache_hit"]
    assert torch.equal(warm.data.images, cold.data.images)
    assert list(cache.glob("*.tmp")) == []
    img = make_image(0, np.random.default_rng(5), 150)
    Image.fromarray(img).save(root / "test" / "normal" / "0.jpg", quality=90)
    changed = _dm(root, cache_dir=cache)
    assert not changed.data.info["cache_hit"]
    assert not torch.equal(changed.data.images, cold.data.images)
    assert not any(p.suffix in (".pt", ".tmp") for p in root.rglob("*"))
    with pytest.raises(ValueError, match="inside the data root"):
        _dm(root, cache_dir=root / "cache")


def test_bad_config_values_name_the_key(synthetic_root: Path) -> None:
    cases = [
        ({"stage": "covid"}, "data.stage"),
        ({"imbalance": "focal"}, "data.imbalance"),
        ({"on_bad_file": "ignore"}, "data.on_bad_file"),
        ({"val_fraction": 1.5}, "data.val_fraction"),
        ({"batch_size": 0}, "data.batch_size"),
        ({"expect_mode": "RGB"}, "data.expect_mode"),
        ({"preprocessing": {"equalise": True}}, "data.preprocessing.equalise"),
        ({"preprocessing": {"denoise": "bilateral"}}, "data.preprocessing.denoise"),
        ({"preprocessing": {"border_crop": 0.7}}, "data.preprocessing.border_crop"),
        ({"augmentation": {"rotation": "lots"}}, "data.augmentation.rotation"),
        ({"augmentation": {"enabled": "yes"}}, "data.augmentation.enabled"),
    ]
    for kwargs, key in cases:
        with pytest.raises(ValueError, match=key.replace(".", r"\.")):
            XrayDataModule(root=synthetic_root, **kwargs)
    dm = XrayDataModule(root=synthetic_root, augmentation=OmegaConf.create({"enabled": True}))
    assert dm.augmentation["enabled"] and dm.augmentation["rotation"] == 10.0


def test_yaml_config_is_the_constructor_contract(synthetic_root: Path, tmp_path: Path) -> None:
    from hydra.utils import instantiate

    cfg = OmegaConf.load(REPO / "conf" / "data" / "xray.yaml")
    params = set(inspect.signature(XrayDataModule.__init__).parameters) - {"self"}
    keys = set(cfg) - {"_target_", "defaults"}
    assert keys <= params, keys - params
    overrides = {"root": str(synthetic_root), "stage": "three_class", "seed": 3}
    overrides["cache_dir"] = str(tmp_path / "cache")
    cfg = OmegaConf.merge(cfg, overrides)
    dm = instantiate(cfg)
    assert isinstance(dm, XrayDataModule) and dm.num_classes == 3
    dm.setup()
    kaggle = OmegaConf.load(REPO / "conf" / "data" / "kaggle.yaml")
    assert set(kaggle) - {"defaults"} <= params


class _Recorder(pl.LightningModule):
    """Tiny model that keeps what the DataModule hands to training and validation steps."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(1, 2)
        self.seen: dict[str, list[torch.Tensor]] = {"train": [], "val": []}

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.seen["train"].append(x.detach().clone())
        return self.lin(x.mean(dim=(1, 2, 3))[:, None]).logsumexp(1).mean()

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.seen["val"].append(batch[0].detach().clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_trainer_gets_float_batches_augmented_only_in_training(synthetic_root: Path) -> None:
    dm = XrayDataModule(root=synthetic_root, augmentation={"enabled": True}, batch_size=8)
    model = _Recorder()
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=dm)
    raw = list(dm.train_dataloader())  # epoch 0 order, as the trainer saw it
    x_train = model.seen["train"][0]
    assert x_train.dtype == torch.float32 and x_train.shape == (8, 1, 150, 150)
    assert torch.equal(x_train, dm.transform_batch(raw[0], train=True)[0])
    assert not torch.equal(x_train, dm.transform_batch(raw[0], train=False)[0])
    x_val = model.seen["val"][0]
    first_val = next(iter(dm.split_dataloader("val")))
    assert torch.equal(x_val, dm.transform_batch(first_val, train=False)[0])
