import sys, time, torch
torch.set_num_threads(1)
from skywork_rl.stages.base import parse_stage_config, run_stage
from skywork_rl.stages.sft import SFTStage
src, data, out, steps = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
argv = [f"--model.name_or_path={src}", f"--data.train={data}/train", f"--training.output_dir={out}",
    f"--training.max_steps={steps}", "--training.per_device_train_batch_size=8", "--training.learning_rate=3e-3",
    "--training.lr_scheduler_type=constant", "--training.save_strategy=no", "--training.use_cpu=true",
    "--training.report_to=[]", "--training.disable_tqdm=true", "--training.seed=1"]
t = time.time(); r = run_stage(SFTStage(parse_stage_config(SFTStage, argv)), force=True)
print("done", round(time.time() - t), r.get("final_loss"), flush=True)
