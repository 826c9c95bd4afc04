"""`skywork-rl preflight`: will a recipe or pipeline start and fit on this hardware, before it runs?"""
