from datasan.cli import main

main()
