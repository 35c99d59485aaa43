from steward.cmd.main import main

main()
