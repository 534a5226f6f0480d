# Runs in edgetl's interpreter (/work/main/.venv/bin/python) with only the packages edgetl lacks
# added through PYTHONPATH=overlay (symlinks into the /tmp venv); nothing is installed into edgetl's venv.
import os
import shutil
import sys
import time

import numpy as np

order=sys.argv[1]
os.environ['TORCHINDUCTOR_CACHE_DIR']=os.path.abspath('inductor_'+order)
def t(): return time.perf_counter()
def lt_convert(tag):
    import litert_torch
    import torch
    m=torch.nn.Sequential(torch.nn.Conv2d(3,8,3,padding=1),torch.nn.ReLU(),torch.nn.AdaptiveAvgPool2d(1),torch.nn.Flatten(),torch.nn.Linear(8,10)).eval()
    x=torch.randn(1,3,32,32)
    with torch.no_grad():
        litert_torch.convert(m,(x,)).export(f'lt_{tag}.tflite'); ref=m(x).numpy()
    from ai_edge_litert.interpreter import Interpreter
    it=Interpreter(model_path=f'lt_{tag}.tflite'); it.allocate_tensors(); i=it.get_input_details()[0]
    it.set_tensor(i['index'],x.numpy()); it.invoke(); y=it.get_tensor(it.get_output_details()[0]['index'])
    from ai_edge_quantizer import quantizer as aeq
    from ai_edge_quantizer import recipe
    q=aeq.Quantizer(f'lt_{tag}.tflite'); q.load_quantization_recipe(recipe.dynamic_wi8_afp32()); q.quantize().export_model(f'lt_{tag}_dq.tflite',overwrite=True)
    print(tag,'litert-torch convert+aeq OK, maxdiff',float(np.abs(y-ref).max()),flush=True)
def o2t(tag):
    import onnx2tf
    shutil.copy('/work/main/runs/bench-transfer/pretrained-two-phase/export/onnx-fp32/model.onnx',f'm_{tag}.onnx')
    s=t(); onnx2tf.convert(input_onnx_file_path=f'm_{tag}.onnx',output_folder_path=f'o2t_{tag}',non_verbose=True)
    from ai_edge_litert.interpreter import Interpreter
    X=np.load('/tmp/onnx2tf-route/eval_nchw.npy')[:20]
    import onnxruntime as ort
    _s=ort.InferenceSession('/tmp/onnx2tf-route/work/model.onnx'); ref=np.concatenate([_s.run(None,{'pixel_values':X[k:k+1]})[0] for k in range(len(X))])
    it=Interpreter(model_path=f'o2t_{tag}/m_{tag}_float32.tflite'); it.allocate_tensors(); i=it.get_input_details()[0]; o=it.get_output_details()[0]
    d=0
    for k in range(len(X)):
        it.set_tensor(i['index'],np.ascontiguousarray(X[k:k+1].transpose(0,2,3,1))); it.invoke(); d=max(d,float(np.abs(it.get_tensor(o['index'])-ref[k:k+1]).max()))
    print(tag,f'onnx2tf convert OK in {t()-s:.1f}s, maxdiff(20 imgs)',d,flush=True)
if order=='torch_first':
    import torch
    import tensorflow as tf; print('tf',tf.__version__,'torch',torch.__version__,flush=True)
    lt_convert(order); o2t(order); lt_convert(order+'_again')
else:
    import tensorflow as tf; print('tf',tf.__version__,flush=True)
    o2t(order); lt_convert(order)
print('DONE',order)
