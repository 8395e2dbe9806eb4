"""The GENNAPE predictor (Mills et al. 2023): accuracy of networks of any family, from their computation graphs.

Pretraining (``fit``) on a labelled family: the contrastive encoder (``contrastive``), soft clusters of its
embeddings (``clusters``), then six members, each scoring a network:

- ``cl_fcm_t``: a 16-head MLP ensemble weighted by FCM memberships on the FLOPs-transformed target (CL+FCM+T);
- ``cl_t``: one MLP on the same target (CL+T);
- ``pairwise_fcm`` / ``pairwise``: which of two networks is more accurate, with an 11-head ensemble or one head;
- ``kgnn``: a k-GNN (GraphConv) regressor on the graph itself, the paper's baseline;
- ``flops``: more compute, more accuracy, the zero-cost baseline.

Members speak different units (accuracies, win rates, FLOPs), so each score becomes a quantile-like value in
(0, 1) against a fixed set of *reference* networks: a regressor's score through the normal CDF of its z-score
among the references' scores, a pairwise head's as the mean probability of beating each reference. GENNAPE is
their weighted mean: equal weights zero-shot, the softmax of each member's Kendall tau on the fine-tuning
networks once fine-tuned (the paper's rule). The references are a sample of the pretraining family, replaced
by the fine-tuning networks on ``finetune``; because they are fixed, a network's score does not depend on
what else is predicted with it (a search asks one batch at a time). The ensemble score becomes an accuracy by
a straight line fitted on the references' labels, clipped to 0-100 %: strictly monotone, so rankings survive.

Fine-tuning keeps the encoder, the clusters and the FLOPs transform's standardisation of the pretraining
family (the paper's choice); it trains the four heads and the k-GNN further on the new family's networks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from hwnas.predictors.base import Predictor, register
from hwnas.predictors.domain import learn, merge
from hwnas.predictors.gcn import train_regressor as train_graph_regressor
from hwnas.predictors.gennape.clusters import FlopsTransform, SoftClusters
from hwnas.predictors.gennape.contrastive import GraphEncoder, embed, train_encoder
from hwnas.predictors.gennape.heads import Pairwise, Regressor, shift_output, train_pairwise, train_regressor
from hwnas.predictors.gennape.spectral import spectra
from hwnas.predictors.gnn import GnnNet, batches, to_data
from hwnas.predictors.samples import Samples

MEMBERS = ("cl_fcm_t", "cl_t", "pairwise_fcm", "pairwise", "kgnn", "flops")
NETS = ("encoder", "cl_fcm_t", "cl_t", "pairwise_fcm", "pairwise", "kgnn")


@dataclass
class _Seen:
    """What the members need of a set of networks, computed once."""

    h: np.ndarray  # standardised embeddings
    macs: np.ndarray
    u_reg: np.ndarray
    u_pair: np.ndarray
    kgnn: np.ndarray  # the k-GNN's predicted accuracy


def _log_flops(macs: np.ndarray) -> np.ndarray:
    return np.log10(2.0 * np.maximum(np.asarray(macs, dtype=np.float64), 1.0))


@register
class GennapePredictor(Predictor):
    kind = "gennape"
    needs = ("graphs", "flops")
    description = ("GENNAPE: contrastive CG encoder, FCM MLP ensembles, pairwise heads, k-GNN and FLOPs; accuracy "
                   "of any family, zero-shot or fine-tuned")

    @classmethod
    def defaults(cls) -> dict:
        return {"seed": 0, "n_features": 0, "min_accuracy": 80.0, "references": 256,
                # contrastive encoder (supplement: k-GNN 4 layers + Transformer 1 layer 2 heads, 64 + 64, tau 0.05)
                "width": 64, "projection": 32, "cl_epochs": 8, "cl_batch": 128, "cl_lr": 1e-3, "cl_dropout": 0.1,
                "cl_temperature": 0.05, "spectral_temperature": 0.05,
                # soft clusters (supplement: [C, m] = [16, 4.0] for regressors, [11, 3.5] for classifiers, PCA 32)
                "reg_clusters": 16, "reg_fuzziness": 4.0, "pair_clusters": 11, "pair_fuzziness": 3.5, "pca": 32,
                # heads
                "hidden": 128, "head_layers": 4, "epochs": 40, "lr": 1e-3, "batch_size": 32, "pairs_per_epoch": 4096,
                "pair_batch": 128,
                # the k-GNN member (BRP-NAS-style training with early stopping on 10 % held out)
                "kgnn_hidden": 64, "kgnn_layers": 4, "kgnn_epochs": 40, "kgnn_lr": 1e-3,
                # fine-tuning (paper: 100 epochs on 50 networks)
                "finetune_epochs": 100, "finetune_lr": 1e-4, "finetune_batch": 5}

    # ---- pretraining --------------------------------------------------------------------------------------------
    progress: Callable[[str], None] = staticmethod(lambda what: None)  # set by a caller that shows progress

    def _fit(self, train: Samples, valid: Samples | None) -> None:
        """Pretrain on ``train`` (``valid`` is not used: the k-GNN holds out a tenth of ``train`` itself)."""
        c, progress = self.config, self.progress
        seed = int(c["seed"])
        torch.manual_seed(seed)
        if c["min_accuracy"] and np.sum(train.y >= c["min_accuracy"]) >= 10:
            train = train.take(np.flatnonzero(train.y >= c["min_accuracy"]))  # the paper prunes below 80 %
        data = [to_data(g) for g in train.graphs]
        c["n_features"] = int(data[0].x.shape[1])
        macs, log_flops = np.asarray(train.flops, dtype=np.float64), _log_flops(train.flops)
        progress(f"spectra of {len(data)} graphs")
        self.encoder = train_encoder(data, spectra(train.graphs), log_flops, c,
                                     lambda epoch, loss: progress(f"contrastive epoch {epoch + 1}: loss {loss:.3f}"))
        raw = embed(self.encoder, data)
        self.h_scale = np.stack([raw.mean(axis=0), raw.std(axis=0) + 1e-6])
        h = self._standard(raw)
        self.fcm_reg = SoftClusters.fit(raw, log_flops, int(c["reg_clusters"]), c["reg_fuzziness"], int(c["pca"]), seed)
        self.fcm_pair = SoftClusters.fit(raw, log_flops, int(c["pair_clusters"]), c["pair_fuzziness"], int(c["pca"]),
                                         seed)
        u_reg, u_pair = self.fcm_reg.memberships(raw, log_flops), self.fcm_pair.memberships(raw, log_flops)
        self.transform = FlopsTransform.fit(train.y, macs)
        target = self.transform.forward(train.y, macs)
        self._build_heads()
        progress("heads")
        schedule = (int(c["epochs"]), float(c["lr"]), int(c["batch_size"]))
        train_regressor(self.cl_fcm_t, h, u_reg, target, *schedule, seed)
        train_regressor(self.cl_t, h, np.ones((len(h), 1)), target, *schedule, seed)
        pair_schedule = (int(c["epochs"]), float(c["lr"]), int(c["pair_batch"]), seed, int(c["pairs_per_epoch"]))
        train_pairwise(self.pairwise_fcm, h, u_pair, train.y, *pair_schedule)
        train_pairwise(self.pairwise, h, np.ones((len(h), 1)), train.y, *pair_schedule)
        progress("k-GNN")
        self.kgnn_scale = np.array([train.y.mean(), train.y.std() or 1.0])
        held = np.random.default_rng(seed).permutation(len(data))
        n_valid = max(1, len(data) // 10)
        self._train_kgnn([data[i] for i in held[n_valid:]], train.y[held[n_valid:]],
                         [data[i] for i in held[:n_valid]], train.y[held[:n_valid]],
                         {"epochs": int(c["kgnn_epochs"]), "lr": float(c["kgnn_lr"]), "batch_size": 32,
                          "patience": 10, "lr_patience": 5})
        chosen = np.random.default_rng(seed).permutation(len(train))[:int(c["references"])]
        seen = self._seen_of(h[chosen], macs[chosen], data=[data[i] for i in chosen], raw=raw[chosen])
        self._set_references(seen, train.y[chosen])
        self.weights = np.full(len(MEMBERS), 1.0 / len(MEMBERS))
        self._calibrate()
        self.card.notes = self._notes()

    def _build_heads(self) -> None:
        c, width = self.config, 2 * int(self.config["width"])
        hidden, layers = int(c["hidden"]), int(c["head_layers"])
        self.cl_fcm_t = Regressor(int(c["reg_clusters"]), width, hidden, layers)
        self.cl_t = Regressor(1, width, hidden, layers)
        self.pairwise_fcm = Pairwise(int(c["pair_clusters"]), width, hidden, layers)
        self.pairwise = Pairwise(1, width, hidden, layers)
        self.kgnn = GnnNet("graphconv", int(c["n_features"]), int(c["kgnn_hidden"]), int(c["kgnn_layers"]), 0.0)

    def _train_kgnn(self, data: list, y: np.ndarray, valid: list, valid_y: np.ndarray, schedule: dict) -> None:
        config = {"seed": int(self.config["seed"]), "weight_decay": 5e-4, **schedule}
        (valid_batch,) = batches(valid, torch.device("cpu"), size=len(valid))
        train_graph_regressor(self.kgnn, len(data), lambda index: (batches([data[i] for i in index.tolist()],
                                                                           torch.device("cpu"), size=len(index))[0],),
                              (y - self.kgnn_scale[0]) / self.kgnn_scale[1], (valid_batch,),
                              (valid_y - self.kgnn_scale[0]) / self.kgnn_scale[1], config)

    # ---- what the members see -------------------------------------------------------------------------------------
    def _standard(self, raw: np.ndarray) -> np.ndarray:
        return (raw - self.h_scale[0]) / self.h_scale[1]

    def _seen_of(self, h: np.ndarray, macs: np.ndarray, data: list, raw: np.ndarray) -> _Seen:
        log_flops = _log_flops(macs)
        with torch.no_grad():
            kgnn = torch.cat([self.kgnn(b) for b in batches(data, torch.device("cpu"))]).numpy()
        return _Seen(h, macs, self.fcm_reg.memberships(raw, log_flops), self.fcm_pair.memberships(raw, log_flops),
                     kgnn.astype(np.float64) * self.kgnn_scale[1] + self.kgnn_scale[0])

    def _seen(self, samples: Samples) -> _Seen:
        data = [to_data(g) for g in samples.graphs]
        raw = embed(self.encoder, data)
        return self._seen_of(self._standard(raw), np.asarray(samples.flops, dtype=np.float64), data, raw)

    def _raw_scores(self, seen: _Seen) -> dict[str, np.ndarray]:
        """The scalar members' scores (accuracies, or log FLOPs), and the pairwise heads' latents."""
        h = torch.as_tensor(seen.h, dtype=torch.float32)
        ones = torch.ones(len(h), 1)
        with torch.no_grad():
            out = {"cl_fcm_t": self.transform.inverse(
                       self.cl_fcm_t(h, torch.as_tensor(seen.u_reg, dtype=torch.float32)).numpy(), seen.macs),
                   "cl_t": self.transform.inverse(self.cl_t(h, ones).numpy(), seen.macs),
                   "pairwise_fcm": self.pairwise_fcm.latent(h, torch.as_tensor(seen.u_pair, dtype=torch.float32)),
                   "pairwise": self.pairwise.latent(h, ones),
                   "kgnn": seen.kgnn, "flops": _log_flops(seen.macs)}
        return out

    def _set_references(self, seen: _Seen, accuracy: np.ndarray) -> None:
        self.reference = self._raw_scores(seen)
        self.reference_accuracy = np.asarray(accuracy, dtype=np.float64)

    def member_scores(self, samples: Samples, reference: Samples | None = None) -> dict[str, np.ndarray]:
        """Each member's quantile-like score in (0, 1) against the references (``reference``: other networks
        instead of the stored ones, labels not needed), and ``gennape``, their weighted mean."""
        samples.require(*self.needs)
        scores = self._raw_scores(self._seen(samples))
        return self._against(scores, self._raw_scores(self._seen(reference)) if reference is not None
                             else self.reference)

    def _against(self, scores: dict, reference: dict) -> dict[str, np.ndarray]:
        """``member_scores`` from raw scores (``_raw_scores``) and the references' raw scores."""
        out = {}
        with torch.no_grad():
            for member in MEMBERS:
                if member.startswith("pairwise"):
                    out[member] = getattr(self, member).win_rate(scores[member], reference[member]).numpy()
                    out[member] = out[member].astype(float)
                else:
                    spread = float(np.std(reference[member])) or 1.0
                    out[member] = stats.norm.cdf((scores[member] - np.mean(reference[member])) / spread)
        out["gennape"] = sum(w * out[m] for w, m in zip(self.weights, MEMBERS, strict=True))
        return out

    def _calibrate(self) -> None:
        """The straight line from ensemble score to accuracy, least squares on the references."""
        scores = self._reference_ensemble()
        slope, intercept = np.polyfit(scores, self.reference_accuracy, 1) if np.ptp(scores) > 0 else (0.0, 0.0)
        self.calibration = np.array([intercept if slope > 0 else float(np.mean(self.reference_accuracy)),
                                     max(slope, 1e-6)])
        self.card.bounds = [0.0, 100.0]

    def _reference_ensemble(self) -> np.ndarray:
        return self._against(self.reference, self.reference)["gennape"]

    def _predict(self, samples: Samples) -> np.ndarray:
        score = self.member_scores(samples)["gennape"]
        return self.calibration[0] + self.calibration[1] * score

    # ---- fine-tuning ----------------------------------------------------------------------------------------------
    def finetune(self, samples: Samples, epochs: int | None = None) -> GennapePredictor:
        """Train the heads and the k-GNN further on a few labelled networks of a new family (in place); they
        become the references, and the members' weights the softmax of their Kendall tau on them. Each
        regressor's output is first shifted to the new targets' mean (``heads.shift_output``), so training
        refines its ranking instead of chasing the family's offset."""
        samples.require(*self.needs, "y")
        if len(samples) < 2:
            raise ValueError("fine-tuning needs at least 2 labelled networks")
        c = self.config
        epochs = int(c["finetune_epochs"] if epochs is None else epochs)
        schedule = (epochs, float(c["finetune_lr"]), int(c["finetune_batch"]))
        seed = int(c["seed"])
        data = [to_data(g) for g in samples.graphs]
        raw = embed(self.encoder, data)
        macs = np.asarray(samples.flops, dtype=np.float64)
        seen = self._seen_of(self._standard(raw), macs, data, raw)
        target = self.transform.forward(samples.y, macs)
        h = torch.as_tensor(seen.h, dtype=torch.float32)
        for net, memberships in ((self.cl_fcm_t, seen.u_reg), (self.cl_t, np.ones((len(samples), 1)))):
            with torch.no_grad():
                predicted = net(h, torch.as_tensor(memberships, dtype=torch.float32)).numpy()
            shift_output(net.heads.biases[-1], predicted, target)
            train_regressor(net, seen.h, memberships, target, *schedule, seed)
        # every ordered pair once an epoch, in batches of pair_batch pairs
        pair_schedule = (epochs, float(c["finetune_lr"]), int(c["pair_batch"]), seed, len(samples) * (len(samples) - 1))
        train_pairwise(self.pairwise_fcm, seen.h, seen.u_pair, samples.y, *pair_schedule)
        train_pairwise(self.pairwise, seen.h, np.ones((len(samples), 1)), samples.y, *pair_schedule)
        standard_y = (samples.y - self.kgnn_scale[0]) / self.kgnn_scale[1]
        shift_output(self.kgnn.head[-1].bias, (seen.kgnn - self.kgnn_scale[0]) / self.kgnn_scale[1], standard_y)
        self._train_kgnn(data, samples.y, data, samples.y,
                         {"epochs": epochs, "lr": float(c["finetune_lr"]) * 10, "batch_size": int(c["finetune_batch"]),
                          "patience": epochs, "lr_patience": epochs})
        self._set_references(self._seen_of(seen.h, macs, data, raw), samples.y)
        scores = self.member_scores(samples)
        tau = np.array([stats.kendalltau(scores[m], samples.y).statistic for m in MEMBERS])
        tau = np.nan_to_num(tau, nan=0.0)
        self.weights = np.exp(tau) / np.exp(tau).sum()
        self._calibrate()
        self.card.domain = merge(self.card.domain, learn(samples, self.needs))
        self.card.notes = self._notes(finetuned=len(samples))
        return self

    def _notes(self, finetuned: int = 0) -> str:
        weights = ", ".join(f"{m} {w:.3f}" for m, w in zip(MEMBERS, self.weights, strict=True))
        done = f"fine-tuned on {finetuned} networks; " if finetuned else "zero-shot; "
        return (f"{done}member weights: {weights}; FLOPs transform (Eq. 5) standardisation of the pretraining "
                f"family: mean {self.transform.scale[0]:.4f}, std {self.transform.scale[1]:.4f}; accuracy = "
                f"{self.calibration[0]:.3f} + {self.calibration[1]:.3f} x ensemble score")

    # ---- saving -----------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        out = {f"{name}.{k}": v.detach().numpy() for name in NETS for k, v in getattr(self, name).state_dict().items()}
        out.update(self.fcm_reg.state("fcm_reg"))
        out.update(self.fcm_pair.state("fcm_pair"))
        out.update({"transform": self.transform.scale, "h_scale": self.h_scale, "kgnn_scale": self.kgnn_scale,
                    "weights": self.weights, "calibration": self.calibration,
                    "reference_accuracy": self.reference_accuracy})
        out.update({f"reference.{m}": np.asarray(v, dtype=np.float32) for m, v in self.reference.items()})
        return out

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        c = self.config
        self.encoder = GraphEncoder(int(c["n_features"]), int(c["width"]), dropout=float(c["cl_dropout"]))
        self._build_heads()
        for name in NETS:
            prefix = f"{name}."
            getattr(self, name).load_state_dict({k.removeprefix(prefix): torch.from_numpy(v.copy())
                                                 for k, v in arrays.items() if k.startswith(prefix)})
            getattr(self, name).eval()
        self.fcm_reg = SoftClusters.from_state(arrays, "fcm_reg")
        self.fcm_pair = SoftClusters.from_state(arrays, "fcm_pair")
        self.transform = FlopsTransform(arrays["transform"])
        self.h_scale, self.kgnn_scale = arrays["h_scale"], arrays["kgnn_scale"]
        self.weights, self.calibration = arrays["weights"], arrays["calibration"]
        self.reference_accuracy = arrays["reference_accuracy"]
        self.reference = {m: (torch.from_numpy(arrays[f"reference.{m}"].copy()) if m.startswith("pairwise")
                              else arrays[f"reference.{m}"].astype(np.float64)) for m in MEMBERS}
