"""The whole BPR step (propagation, loss, backward, Adam) as one torch.compile(fullgraph=True)
graph gives the eager trainer's losses and weights, with and without dropout."""
import pytest
import torch
import torch._inductor.config as inductor_config

from gnn import TrainConfig, Trainer
from tiny_datasets import tiny_split

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def trainer(model, compile, **kw):
    cfg = TrainConfig(model=model, dataset="tiny", epochs=1, batch_size=64, lr=0.05, dim=8,
                      layers=2, device="cpu", progress=False, compile=compile, **kw)
    return Trainer(cfg, dataset=tiny_split(), log=lambda *a: None)


def batches(n_users=30, n_items=40, steps=3, size=64):
    g = torch.Generator().manual_seed(0)
    return [tuple(torch.randint(0, n, (size,), generator=g) for n in (n_users, n_items, n_items))
            for _ in range(steps)]


@pytest.mark.parametrize("model,options", [
    ("lightgcn", {}),
    ("ngcf", {"message_dropout": 0.2, "node_dropout": 0.2}),
])
@inductor_config.patch(fallback_random=True)  # torch's own random draws: eager's masks
def test_compiled_step_matches_eager(model, options):
    torch._dynamo.reset()
    eager, compiled = trainer(model, False, **options), trainer(model, True, **options)
    for s, (u, i, j) in enumerate(batches()):
        torch.manual_seed(100 + s)
        want = eager.train_step(u, i, j)
        torch.manual_seed(100 + s)
        got = compiled.train_step(u, i, j)
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-7), (s, float(got), float(want))
    for (name, a), b in zip(eager.model.named_parameters(), compiled.model.parameters()):
        # Adam divides by sqrt(v): last-bit differences of tiny gradients grow to ~1e-5 here
        assert (a - b).abs().max() <= 1e-4, (name, float((a - b).abs().max()))
    # the optimiser state stays torch.optim.Adam's: a compiled run's checkpoint resumes eagerly
    state = compiled.optimizer.state_dict()
    eager.optimizer.load_state_dict(state)
    assert all(float(s["step"]) == 3 for s in state["state"].values())


@pytest.mark.parametrize("model,options", [
    ("lightgcn", {}),
    ("ngcf", {"message_dropout": 0.2, "node_dropout": 0.2}),  # the kernels' dense step
])
def test_compiled_step_has_no_graph_break(model, options):
    torch._dynamo.reset()
    t = trainer(model, True, **options)
    u, i, j = batches(steps=1)[0]
    explained = torch._dynamo.explain(lambda: t.model.loss(u, i, j, 1e-4, check=False))()
    assert explained.graph_break_count == 0, explained.break_reasons
