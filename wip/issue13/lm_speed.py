import time, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1)
class Block(nn.Module):
    def __init__(s, d, h):
        super().__init__(); s.h=h; s.ln1=nn.LayerNorm(d); s.qkv=nn.Linear(d,3*d); s.proj=nn.Linear(d,d); s.ln2=nn.LayerNorm(d); s.fc1=nn.Linear(d,4*d); s.fc2=nn.Linear(4*d,d)
    def forward(s,x):
        B,T,D=x.shape; q,k,v=s.qkv(s.ln1(x)).view(B,T,3,s.h,D//s.h).permute(2,0,3,1,4)
        x = x + s.proj(F.scaled_dot_product_attention(q,k,v,is_causal=True).transpose(1,2).reshape(B,T,D))
        return x + s.fc2(F.gelu(s.fc1(s.ln2(x))))
class LM(nn.Module):
    def __init__(s,d=128,L=4,h=4,ctx=128):
        super().__init__(); s.emb=nn.Embedding(256,d); s.pos=nn.Parameter(torch.zeros(ctx,d)); s.blocks=nn.ModuleList([Block(d,h) for _ in range(L)]); s.ln=nn.LayerNorm(d)
    def forward(s,idx):
        x=s.emb(idx)+s.pos[:idx.shape[1]]
        for b in s.blocks: x=b(x)
        return s.ln(x)@s.emb.weight.T
for d in (128,192):
    m=LM(d); opt=torch.optim.AdamW(m.parameters(),3e-3)
    x=torch.randint(0,256,(32,129))
    t=time.time()
    for _ in range(5):
        loss=F.cross_entropy(m(x[:,:-1]).reshape(-1,256),x[:,1:].reshape(-1)); opt.zero_grad(); loss.backward(); opt.step()
    print(d,(time.time()-t)/5)
