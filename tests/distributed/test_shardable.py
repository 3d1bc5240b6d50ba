"""gnn.distributed asks the model for its layers (``num_layers`` layer steps) instead of testing
its class, and refuses, with the reason, a model whose math is not layer steps (issue 19)."""
import pytest
import torch

from gnn import MF, NGCF, GraphRecommender, LightGCN, build_adjacency
from gnn.distributed.model import check_shardable
from gnn.models.base import spmm


def adjacency():
    return build_adjacency([0, 0, 1, 2], [0, 1, 1, 2], 3, 3)


class OwnPropagate(LightGCN):
    def propagate(self, adj):
        return [self.node_embeddings(), spmm(adj, self.node_embeddings()) * 2]


class OwnLayer(LightGCN):
    def layer_step(self, k, s, x, rows=None, n_nodes=None):
        return torch.tanh(s)


class OwnEmbeddings(LightGCN):
    def node_embeddings(self):
        return torch.tanh(super().node_embeddings())


class NoLayerStep(GraphRecommender):
    num_layers = 2

    def __init__(self, adj):
        super().__init__(adj)
        self._create_embeddings(4)
        self.init_args = {}


@pytest.mark.parametrize("model,layers", [
    (lambda a: NGCF(a, embedding_dim=4, num_layers=2), 2),
    (lambda a: LightGCN(a, embedding_dim=4, num_layers=3), 3),
    (lambda a: MF(a, embedding_dim=4), 0),
    (lambda a: OwnLayer(a, embedding_dim=4, num_layers=1), 1),  # a layer of its own: fine
])
def test_layers_come_from_the_model(model, layers):
    assert check_shardable(model(adjacency())) == layers


@pytest.mark.parametrize("cls,match", [
    (OwnPropagate, "overrides propagate \\(in OwnPropagate\\) below its layer_step \\(in LightGCN\\)"),
    (OwnEmbeddings, "overrides node_embeddings"),
    (NoLayerStep, "has 2 layers but no layer_step"),
])
def test_a_model_that_is_not_layer_steps_is_refused_with_the_reason(cls, match):
    model = cls(adjacency()) if cls is NoLayerStep else cls(adjacency(), embedding_dim=4)
    with pytest.raises(ValueError, match=match):
        check_shardable(model)
