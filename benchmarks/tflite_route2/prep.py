# Replicates edgetl/data/preprocess.py (resize shorter side to spec.resize, bilinear, centre crop, /255, mean/std)
import json

import numpy as np
from PIL import Image

B='/work/main/runs/bench-transfer/pretrained-two-phase/'
spec=json.load(open(B+'edgetl.json'))['preprocess']; splits=json.load(open(B+'splits.json'))
M=np.asarray(spec['mean'],np.float32); S=np.asarray(spec['std'],np.float32)
def raw(path):  # HWC float32 in [0,1], before normalisation
    img=Image.open(path).convert('RGB'); _,h,w=spec['input_size']; short=spec['resize']
    iw,ih=img.size; sc=short/min(iw,ih); nw,nh=max(w,round(iw*sc)),max(h,round(ih*sc))
    img=img.resize((nw,nh),Image.Resampling.BILINEAR); l,t=(nw-w)//2,(nh-h)//2
    img=img.crop((l,t,l+w,t+h)); return np.asarray(img,dtype=np.float32)/255.0
labels=spec.get('labels')
# splits are sorted by label, so take evenly spaced rows to cover all 10 classes
import numpy as _n

tr=splits['train']; train=[tr[i] for i in _n.linspace(0,len(tr)-1,100).round().astype(int)]
hv=splits['val']+splits['test']; held=[hv[i] for i in _n.linspace(0,len(hv)-1,200).round().astype(int)]
calib=np.stack([raw(r['path']) for r in train]).astype(np.float32)          # [100,96,96,3] in [0,1]
eval_raw=np.stack([raw(r['path']) for r in held]).astype(np.float32)
eval_nchw=np.ascontiguousarray(((eval_raw-M)/S).transpose(0,3,1,2)).astype(np.float32)
lab=np.array([int(r['label']) for r in held])
np.save('work/calib_train100_nhwc_01.npy',calib); np.save('eval_nchw.npy',eval_nchw); np.save('eval_labels.npy',lab)
print(calib.shape, calib.min(), calib.max(), eval_nchw.shape, np.bincount(lab), 'train labels', np.bincount([int(r['label']) for r in train],minlength=10))
