import json
import os
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter

E='/work/main/runs/bench-transfer/pretrained-two-phase/export/'
M={'litert-torch fp32':E+'tflite-fp32/model.tflite','onnx2tf float32':'work/out_fp/m_fp_float32.tflite',
   'litert-torch fp16':E+'tflite-fp16/model.tflite','onnx2tf float16':'work/out_fp/m_fp_float16.tflite',
   'litert-torch int8':E+'tflite-int8/model.tflite','onnx2tf integer_quant (fp32 io)':'work/out_q/m_q_integer_quant.tflite'}
X=np.load('eval_nchw.npy')[:1]
res={'loadavg_before':os.getloadavg()}
for rnd in range(3):  # two interleaved rounds to expose drift
  for n,p in M.items():
    it=Interpreter(model_path=p,num_threads=2); it.allocate_tensors(); i=it.get_input_details()[0]
    x=np.ascontiguousarray(X.transpose(0,2,3,1) if list(i['shape'])==[1,96,96,3] else X)
    it.set_tensor(i['index'],x)
    for _ in range(20): it.invoke()
    t=[]
    for _ in range(200):
        s=time.perf_counter(); it.invoke(); t.append(time.perf_counter()-s)
    t=np.array(t)*1e3; res.setdefault(n,[]).append([float(np.median(t)),float(np.percentile(t,90))])
    print(rnd,n,f"median {np.median(t):.3f} ms p90 {np.percentile(t,90):.3f} ms",flush=True)
res['loadavg_after']=os.getloadavg(); print(res['loadavg_before'],res['loadavg_after'])
json.dump(res,open(sys.argv[1] if len(sys.argv)>1 else 'latency.json','w'),indent=1)
