import torch, time
for th in (1,2):
    torch.set_num_threads(th)
    A = torch.randn(1280,5120); V = torch.randn(5120,384); G=torch.randn(1280,1280); G=G@G.T
    for name, f in [("Z@V q384", lambda: A@V), ("Gram m2n", lambda: A@A.T), ("eigh1280", lambda: torch.linalg.eigh(G)), ("qr 1280x384", lambda: torch.linalg.qr(A[:, :384])), ("eigh384", lambda: torch.linalg.eigh(G[:384,:384]))]:
        f(); t=time.perf_counter(); 
        for _ in range(3): f()
        print(th, name, round((time.perf_counter()-t)/3,4), flush=True)
