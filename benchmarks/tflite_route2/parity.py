import collections
import json
import os

import numpy as np
import onnxruntime as ort
from ai_edge_litert.interpreter import Interpreter

X=np.load('eval_nchw.npy'); Y=np.load('eval_labels.npy')
ref_sess=ort.InferenceSession('work/model.onnx',providers=['CPUExecutionProvider'])
ref=np.concatenate([ref_sess.run(['logits'],{'pixel_values':X[i:i+1]})[0] for i in range(len(X))])
E='/work/main/runs/bench-transfer/pretrained-two-phase/export/'
models={
 'litert-torch fp32 (edgetl)':E+'tflite-fp32/model.tflite',
 'litert-torch fp16 (edgetl)':E+'tflite-fp16/model.tflite',
 'litert-torch int8 (edgetl)':E+'tflite-int8/model.tflite',
 'litert-torch int8-dynamic (edgetl)':E+'tflite-int8-dynamic/model.tflite',
 'onnx2tf float32':'work/out_fp/m_fp_float32.tflite',
 'onnx2tf float16':'work/out_fp/m_fp_float16.tflite',
 'onnx2tf dynamic_range_quant':'work/out_q/m_q_dynamic_range_quant.tflite',
 'onnx2tf integer_quant (fp32 io)':'work/out_q/m_q_integer_quant.tflite',
 'onnx2tf full_integer_quant (int8 io)':'work/out_q/m_q_full_integer_quant.tflite',
 'onnx2tf integer_quant_with_int16_act':'work/out_q/m_q_integer_quant_with_int16_act.tflite',
 'onnx2tf full_integer_quant_with_int16_act':'work/out_q/m_q_full_integer_quant_with_int16_act.tflite',
}
res={'ref_acc':float((ref.argmax(1)==Y).mean()),'n':int(len(X))}
for name,p in models.items():
    if not os.path.exists(p): res[name]='missing'; continue
    it=Interpreter(model_path=p,num_threads=2); it.allocate_tensors()
    i=it.get_input_details()[0]; o=it.get_output_details()[0]
    nhwc = list(i['shape'])==[1,96,96,3]
    outs=[]
    for k in range(len(X)):
        x=X[k:k+1].transpose(0,2,3,1) if nhwc else X[k:k+1]
        if i['dtype']!=np.float32:
            s,z=i['quantization']; x=np.clip(np.round(x/s+z),np.iinfo(i['dtype']).min,np.iinfo(i['dtype']).max).astype(i['dtype'])
        it.set_tensor(i['index'],np.ascontiguousarray(x)); it.invoke(); y=it.get_tensor(o['index'])
        if o['dtype']!=np.float32:
            s,z=o['quantization']; y=(y.astype(np.float32)-z)*s
        outs.append(y.reshape(1,-1))
    out=np.concatenate(outs)
    ops=it._get_ops_details()
    hist=collections.Counter(op['op_name'] for op in ops)
    res[name]={'file':p,'bytes':os.path.getsize(p),
      'input':{'name':i['name'],'shape':[int(v) for v in i['shape']],'dtype':np.dtype(i['dtype']).name,'quant':[float(v) for v in i['quantization']]},
      'output':{'name':o['name'],'shape':[int(v) for v in o['shape']],'dtype':np.dtype(o['dtype']).name,'quant':[float(v) for v in o['quantization']]},
      'max_abs_diff_vs_onnx':float(np.abs(out-ref).max()),'mean_abs_diff':float(np.abs(out-ref).mean()),
      'top1_agree':float((out.argmax(1)==ref.argmax(1)).mean()),'acc':float((out.argmax(1)==Y).mean()),
      'n_ops':len(ops),'op_hist':dict(sorted(hist.items(),key=lambda kv:-kv[1])),
      'n_tensors':len(it.get_tensor_details())}
    print(f"{name:45s} {res[name]['bytes']/1e6:6.2f}MB in={res[name]['input']['shape']}{res[name]['input']['dtype']} maxdiff={res[name]['max_abs_diff_vs_onnx']:.3g} agree={res[name]['top1_agree']:.3f} acc={res[name]['acc']:.3f} ops={len(ops)}",flush=True)
print('onnx fp32 (ORT) acc', res['ref_acc'])
json.dump(res,open('parity.json','w'),indent=1)
