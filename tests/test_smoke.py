def test_package_imports():
    import iil_robot
    assert iil_robot.__version__
