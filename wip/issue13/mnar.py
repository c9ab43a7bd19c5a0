import torch, math
from revival.attack.structured import truncated_mean
def col_activation(M):
    m = M.shape[0]
    p = (M.sum(0).double()+0.5)/(m+1)
    return 1/torch.special.ndtri(1-p/2)
def row_scale(W, M):
    return torch.where(~M, W.abs().double(), torch.nan).nanmedian(1).values/0.6745
def tau_bound(W, M, q=1.0):
    """per-entry lower bound of |w| at holes: t_i / a_j, t_i = max (or quantile q) over observed of |w| a_j"""
    a = col_activation(M)
    S = torch.where(~M, W.abs().double()*a[None,:], torch.nan)
    t = S.nanquantile(q, dim=1) if q<1 else torch.where(~M, W.abs().double()*a[None,:], 0.0).amax(1)
    return t[:,None]/a[None,:]
