"""memory.saved_tensor_bytes: counted on layers whose saved tensors are known, and DSR vs BPTT."""
import pytest
import torch
from torch import nn

from snnlab.dsr_models import DSRTutorialSNN
from snnlab.memory import saved_tensor_bytes
from snnlab.models import TutorialSNN


def test_linear_relu_saves_input_and_output_once():
    # Linear saves its input (the weight is a parameter, not counted); ReLU saves its output.
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU())
    x = torch.randn(4, 5, requires_grad=True)
    total, inside = saved_tensor_bytes(model, x, inside=(nn.ReLU,))
    assert total == 4 * 5 * 4 + 4 * 7 * 4
    assert inside == 4 * 7 * 4


def test_nothing_saved_is_an_error():
    with torch.no_grad(), pytest.raises(ValueError, match="saved nothing"):
        saved_tensor_bytes(nn.Linear(3, 2), torch.randn(2, 3))


@pytest.mark.parametrize("T", [4, 8])
def test_dsr_neurons_keep_memory_independent_of_T_and_far_below_bptt(T):
    torch.manual_seed(0)
    x = (torch.rand(T, 8, 2, 24, 24) < 0.1).float()
    bptt_total, bptt_neurons = saved_tensor_bytes(TutorialSNN((2, 24, 24), 10), x)
    dsr_total, dsr_neurons = saved_tensor_bytes(DSRTutorialSNN((2, 24, 24), 10, neuron="lif"), x)
    assert dsr_total < bptt_total and dsr_neurons < bptt_neurons / 5
    # doubling T doubles what BPTT keeps in its neurons; DSR's neurons keep [B, ...] masks and the T rate
    # weights (3 layers x T floats): the growth is those few bytes
    x2 = (torch.rand(2 * T, 8, 2, 24, 24) < 0.1).float()
    assert saved_tensor_bytes(TutorialSNN((2, 24, 24), 10), x2)[1] > 1.9 * bptt_neurons
    assert saved_tensor_bytes(DSRTutorialSNN((2, 24, 24), 10, neuron="lif"), x2)[1] - dsr_neurons == 3 * T * 4
