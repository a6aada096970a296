"""The two sequence helpers that the pinned ``dmm.py`` and its tests use, written here
(``pyro.contrib.examples.polyphonic_data_loader`` needs torchvision)."""
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def reverse_sequences(batch: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence of ``batch`` (B, T, D) reversed over its first ``lengths[b]`` steps."""
    out = torch.zeros_like(batch)
    for b, n in enumerate(lengths.tolist()):
        out[b, :n] = batch[b, :n].flip(0)
    return out


def pad_and_reverse(rnn_output, lengths: torch.Tensor) -> torch.Tensor:
    """A packed RNN output, padded to (B, T, H) and each sequence reversed back."""
    padded, _ = pad_packed_sequence(rnn_output, batch_first=True)
    return reverse_sequences(padded, lengths)


def get_mini_batch(sequences: torch.Tensor, lengths: torch.Tensor):
    """``(mini_batch, mini_batch_reversed (packed), mask, lengths)`` as dmm.py takes them,
    for sequences already sorted by decreasing length."""
    t_max = int(lengths.max())
    mini_batch = sequences[:, :t_max]
    mask = (torch.arange(t_max)[None, :] < lengths[:, None]).to(sequences.dtype)
    reversed_ = pack_padded_sequence(reverse_sequences(mini_batch, lengths), lengths,
                                     batch_first=True)
    return mini_batch, reversed_, mask, lengths
